// The public page behind a share link (/s/{token}): what the file is, and a download button. No sign-in.

import { Api } from "./api.js";
import { h, icon, replaceChildren } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative, typeIcon, typeName } from "./format.js";
import { withBusy } from "./ui.js";

const GONE_TITLE = "This link doesn't work";
const GONE_TEXT =
  "It may have expired, reached its download limit, or been revoked. Ask the person who shared it for a new link.";

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

  document.title = `${share.name} · shared with filepipe`;
  const status = h("p", { class: "share-status", role: "status", "data-testid": "share-status" });
  const button = h(
    "button",
    { type: "button", class: "btn btn-primary btn-large", "data-testid": "share-download" },
    icon("download"),
    h("span", { class: "btn-label" }, "Download"),
  );
  button.addEventListener("click", () =>
    withBusy(button, "Preparing…", async () => {
      status.textContent = "Preparing your download…";
      try {
        const { url } = await api.downloadShare(token);
        status.textContent = "Your download has started.";
        window.location.assign(url);
      } catch (error) {
        if (error.status === 404) {
          gone(container);
          return;
        }
        status.textContent = `The download could not start: ${error.message}`;
      }
    }),
  );

  const preview = share.thumbnailUrl
    ? h("img", { class: "share-thumb", src: share.thumbnailUrl, alt: `Preview of ${share.name}` })
    : h("div", { class: "share-thumb share-thumb-icon" }, icon(typeIcon(share.contentType), "icon icon-hero"));
  const facts = [formatBytes(share.size), typeName(share.contentType)].filter(Boolean).join(" · ");
  const limits = [];
  if (share.expiresAt) limits.push(`Link expires ${formatRelative(share.expiresAt)} (${formatDateTime(share.expiresAt)})`);
  const remaining = share.downloadsRemaining;
  if (remaining !== null && remaining !== undefined) {
    limits.push(`${remaining} ${Number(remaining) === 1 ? "download" : "downloads"} left`);
  }
  const expires = limits.length ? h("p", { class: "hint", "data-testid": "share-limits" }, limits.join(" · ")) : null;

  replaceChildren(
    container,
    h(
      "section",
      { class: "share-card", "data-testid": "share-page", "aria-labelledby": "share-heading" },
      preview,
      h("p", { class: "eyebrow" }, "Someone shared a file with you"),
      h("h1", { id: "share-heading", class: "share-name" }, share.name),
      h("p", { class: "share-facts" }, facts),
      expires,
      button,
      status,
      h("p", { class: "share-note" }, icon("shield"), "Checked for malware before it was shared."),
    ),
  );
}
