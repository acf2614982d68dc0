// The public page behind a share link (/s/{token}): the password if the link has one, then what the files
// are, each with a download button. No sign-in.

import { Api } from "./api.js";
import { h, icon, replaceChildren, uid } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative, typeIcon, typeName } from "./format.js";
import { loadLink, renderGone, renderLocked, tokenFromPath } from "./linkpage.js";
import { withBusy } from "./ui.js";

const GONE_TEXT =
  "It may have expired, reached its download limit, or been revoked. Ask the person who shared it for a new link.";

/** The token from a /s/{token} path, or null for any other page. */
export function shareTokenFromPath(pathname) {
  return tokenFromPath(pathname, "s");
}

function limitsText(share) {
  const limits = [];
  if (share.expiresAt) limits.push(`Link expires ${formatRelative(share.expiresAt)} (${formatDateTime(share.expiresAt)})`);
  const remaining = share.downloadsRemaining;
  if (remaining !== null && remaining !== undefined) {
    limits.push(`${remaining} ${Number(remaining) === 1 ? "download" : "downloads"} left`);
  }
  return limits.length ? h("p", { class: "hint", "data-testid": "share-limits" }, limits.join(" · ")) : null;
}

function preview(file, className) {
  return file.thumbnailUrl
    ? h("img", { class: className, src: file.thumbnailUrl, alt: `Preview of ${file.name}` })
    : h("div", { class: `${className} share-thumb-icon` }, icon(typeIcon(file.contentType), "icon icon-hero"));
}

function facts(file) {
  return [formatBytes(file.size), typeName(file.contentType)].filter(Boolean).join(" · ");
}

export async function renderSharePage(container, config, token) {
  const api = new Api(config.apiUrl);
  const share = await loadLink(container, "share", { loadingText: "Loading the shared file…", goneText: GONE_TEXT, load: () => api.getShare(token) });
  if (!share) return;
  if (share.passwordRequired) {
    renderLocked(container, "share", {
      title: "A protected link · filepipe",
      heading: "This link is protected",
      text: "Enter the password the sender gave you to see the files.",
      unlock: (password) => api.unlockShare(token, password),
      open: (unlocked, password) => renderFiles(container, api, token, unlocked, password),
    });
    return;
  }
  renderFiles(container, api, token, share, null);
}

/** The link's files: one file as a card with a big Download button, several as a list, each with its own. */
function renderFiles(container, api, token, share, password) {
  const files = Array.isArray(share.files) && share.files.length
    ? share.files
    : [{ fileId: null, name: share.name, size: share.size, contentType: share.contentType, thumbnailUrl: share.thumbnailUrl }];
  const status = h("p", { class: "share-status", role: "status", "data-testid": "share-status" });
  const download = (file, button) =>
    withBusy(button, "Preparing…", async () => {
      status.textContent = `Preparing ${files.length > 1 ? file.name : "your download"}…`;
      try {
        const { url } = await api.downloadShare(token, { password, fileId: files.length > 1 ? file.fileId : null });
        status.textContent = "Your download has started.";
        window.location.assign(url);
      } catch (error) {
        if (error.code === "SharedFileNotFound") {
          status.textContent = `${file.name} is no longer part of this link.`;
        } else if (error.status === 404) {
          renderGone(container, "share", GONE_TEXT);
        } else {
          status.textContent = `The download could not start: ${error.message}`;
        }
      }
    });

  const note = h("p", { class: "share-note" }, icon("shield"), `Checked for malware before ${files.length > 1 ? "they were" : "it was"} shared.`);
  if (files.length === 1) {
    const [file] = files;
    document.title = `${file.name} · shared with filepipe`;
    const button = h("button", { type: "button", class: "btn btn-primary btn-large", "data-testid": "share-download" }, icon("download"), h("span", { class: "btn-label" }, "Download"));
    button.addEventListener("click", () => download(file, button));
    replaceChildren(
      container,
      h(
        "section",
        { class: "share-card", "data-testid": "share-page", "aria-labelledby": "share-heading" },
        preview(file, "share-thumb"),
        h("p", { class: "eyebrow" }, "Someone shared a file with you"),
        h("h1", { id: "share-heading", class: "share-name", tabindex: "-1" }, file.name),
        h("p", { class: "share-facts" }, facts(file)),
        limitsText(share),
        button,
        status,
        note,
      ),
    );
  } else {
    const heading = `${files.length} files shared with you`;
    document.title = `${heading} · filepipe`;
    const listId = uid("share-files");
    replaceChildren(
      container,
      h(
        "section",
        { class: "share-card share-card-wide", "data-testid": "share-page", "aria-labelledby": "share-heading" },
        h("h1", { id: "share-heading", class: "share-name", tabindex: "-1" }, heading),
        limitsText(share),
        h(
          "ul",
          { class: "share-files", id: listId, "aria-labelledby": "share-heading" },
          files.map((file) => {
            const button = h(
              "button",
              { type: "button", class: "btn btn-small", "data-testid": "share-file-download" },
              icon("download"),
              h("span", { class: "btn-label" }, "Download"),
              h("span", { class: "visually-hidden" }, ` ${file.name}`),
            );
            button.addEventListener("click", () => download(file, button));
            return h(
              "li",
              { class: "share-file", "data-testid": "share-file", "data-file-id": file.fileId },
              preview(file, "share-file-thumb"),
              h("div", { class: "share-file-info" }, h("p", { class: "share-file-name" }, file.name), h("p", { class: "hint" }, facts(file))),
              button,
            );
          }),
        ),
        status,
        note,
      ),
    );
  }
  if (password !== null) container.querySelector("h1").focus();
}
