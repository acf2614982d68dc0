// The public page behind a share link (/s/{token}): the password if the link has one, then what the files
// are, each with a download button. No sign-in.

import { Api } from "./api.js";
import { h, icon, replaceChildren, uid } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative, typeIcon, typeName } from "./format.js";
import { withBusy } from "./ui.js";

const GONE_TITLE = "This link doesn't work";
const GONE_TEXT =
  "It may have expired, reached its download limit, or been revoked. Ask the person who shared it for a new link.";
// A wrong password and a link that stopped working get the same answer from the service, so the page
// cannot tell them apart either.
const WRONG_PASSWORD = "That password doesn't open this link, or the link no longer works. Check the password and try again.";

/** The token from a /s/{token} path, or null for any other page. */
export function shareTokenFromPath(pathname) {
  const match = /^\/s\/([^/]+)\/?$/.exec(pathname);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

function gone(container) {
  document.title = `${GONE_TITLE} · filepipe`;
  replaceChildren(
    container,
    h(
      "section",
      { class: "share-card is-gone", "data-testid": "share-gone", "aria-labelledby": "share-heading" },
      icon("link-off", "icon icon-hero"),
      h("h1", { id: "share-heading", tabindex: "-1" }, GONE_TITLE),
      h("p", {}, GONE_TEXT),
    ),
  );
  container.querySelector("h1").focus();
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
  replaceChildren(container, h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Loading the shared file…"));
  let share;
  try {
    share = await api.getShare(token);
  } catch (error) {
    if (error.status === 404 || error.status === 400) {
      gone(container);
      return;
    }
    replaceChildren(
      container,
      h(
        "section",
        { class: "share-card", role: "alert", "aria-labelledby": "share-heading" },
        h("h1", { id: "share-heading" }, "Can't load this link right now"),
        h("p", {}, `${error.message} Reload the page to try again.`),
      ),
    );
    return;
  }
  if (share.passwordRequired) {
    renderLocked(container, api, token);
    return;
  }
  renderFiles(container, api, token, share, null);
}

/** A link with a password: ask for it, then show the files; the password stays in this page only. */
function renderLocked(container, api, token) {
  document.title = "A protected link · filepipe";
  const passwordId = uid("share-password");
  const errorId = uid("share-unlock-error");
  const password = h("input", {
    id: passwordId,
    type: "password",
    autocomplete: "off",
    maxlength: "128",
    required: true,
    "aria-describedby": errorId,
    "data-testid": "share-unlock-password",
  });
  const error = h("p", { class: "form-error", id: errorId, role: "alert", hidden: true, "data-testid": "share-unlock-error" });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-large", "data-testid": "share-unlock" }, icon("link"), h("span", { class: "btn-label" }, "Open"));
  const form = h(
    "form",
    { class: "share-unlock", novalidate: true },
    h("div", { class: "field" }, h("label", { for: passwordId }, "Password"), password),
    error,
    button,
  );
  const showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
    password.setAttribute("aria-invalid", message ? "true" : "false");
    if (message) password.focus();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!password.value) {
      showError("Type the password first.");
      return;
    }
    withBusy(button, "Checking…", async () => {
      try {
        const share = await api.unlockShare(token, password.value);
        renderFiles(container, api, token, share, password.value);
      } catch (err) {
        if (err.status === 404) showError(WRONG_PASSWORD);
        else if (err.status === 429) showError(err.message.replace(/^./, (c) => c.toUpperCase()));
        else showError(`The link could not be opened: ${err.message}`);
      }
    });
  });
  replaceChildren(
    container,
    h(
      "section",
      { class: "share-card", "data-testid": "share-locked", "aria-labelledby": "share-heading" },
      icon("shield", "icon icon-hero"),
      h("h1", { id: "share-heading" }, "This link is protected"),
      h("p", { class: "share-facts" }, "Enter the password the sender gave you to see the files."),
      form,
    ),
  );
  password.focus();
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
          gone(container);
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
