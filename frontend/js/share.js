// The share dialog: make a link with an expiry and an optional download limit, copy it, list and revoke links.

import { h, icon, replaceChildren, uid } from "./dom.js";
import { formatDateTime, formatRelative, toDate } from "./format.js";
import { announce, confirmDialog, copyText, withBusy } from "./ui.js";

const DAY = 24 * 60 * 60;
export const EXPIRY_CHOICES = [
  { seconds: DAY, label: "1 day" },
  { seconds: 7 * DAY, label: "7 days", selected: true },
  { seconds: 30 * DAY, label: "30 days" },
];

/** The link for a freshly made share: the API's URL, else one built on this site's /s/ route. */
export function shareLink(created) {
  if (created.url) return created.url;
  return `${window.location.origin}/s/${encodeURIComponent(created.token)}`;
}

/**
 * A share from GET /files/{id}/shares in one shape: {shareId, createdAt, expiresAt, maxDownloads,
 * downloads, state: ACTIVE | EXPIRED | EXHAUSTED}. The service keeps only token hashes, so there is no URL
 * to show again; other spellings are accepted so an older or newer API still lists its links.
 */
export function normalizeShare(raw) {
  const downloads = raw.downloads ?? raw.downloadCount ?? raw.downloadsUsed ?? 0;
  const maxDownloads = raw.maxDownloads ?? raw.downloadLimit ?? null;
  const expiresAt = raw.expiresAt ?? raw.expires ?? null;
  const expired = raw.state ? raw.state === "EXPIRED" : Boolean(toDate(expiresAt) && toDate(expiresAt).getTime() <= Date.now());
  const exhausted = raw.state ? raw.state === "EXHAUSTED" : maxDownloads !== null && Number(downloads) >= Number(maxDownloads);
  return {
    id: raw.shareId ?? raw.id ?? raw.token ?? raw.tokenHash ?? "",
    url: raw.url || "",
    createdAt: raw.createdAt ?? null,
    expiresAt,
    downloads: Number(downloads) || 0,
    maxDownloads: maxDownloads === null ? null : Number(maxDownloads),
    active: !expired && !exhausted && !raw.revoked,
    state: raw.revoked ? "Revoked" : expired ? "Expired" : exhausted ? "Download limit reached" : "Active",
  };
}

function downloadsText(share) {
  const used = `${share.downloads} ${share.downloads === 1 ? "download" : "downloads"}`;
  return share.maxDownloads ? `${share.downloads} of ${share.maxDownloads} downloads` : used;
}

let openDialog = null;

/** Open the share dialog for a READY file; focus returns to `opener` when it closes. */
export function openShareDialog(api, file, opener) {
  openDialog?.close();
  const titleId = uid("share-title");
  const expiryId = uid("share-expiry");
  const limitId = uid("share-limit");
  const limitHintId = uid("share-limit-hint");
  const errorId = uid("share-error");

  const expiry = h(
    "select",
    { id: expiryId, name: "expiry", "data-testid": "share-expiry" },
    EXPIRY_CHOICES.map((choice) => h("option", { value: String(choice.seconds), selected: Boolean(choice.selected) }, choice.label)),
  );
  const limit = h("input", {
    id: limitId,
    name: "maxDownloads",
    type: "number",
    min: "1",
    max: "1000000",
    step: "1",
    inputmode: "numeric",
    placeholder: "No limit",
    "aria-describedby": limitHintId,
    "data-testid": "share-limit",
  });
  const error = h("p", { class: "form-error", id: errorId, role: "alert", hidden: true });
  const createButton = h("button", { type: "submit", class: "btn btn-primary" }, icon("link"), h("span", { class: "btn-label" }, "Create link"));
  const form = h(
    "form",
    { class: "share-form", novalidate: true, "aria-describedby": errorId },
    h("div", { class: "field" }, h("label", { for: expiryId }, "Link expires after"), expiry),
    h(
      "div",
      { class: "field" },
      h("label", { for: limitId }, "Download limit ", h("span", { class: "optional" }, "(optional)")),
      limit,
      h("p", { class: "hint", id: limitHintId }, "Leave empty to allow any number of downloads until the link expires."),
    ),
    h("div", { class: "form-actions" }, createButton),
    error,
  );

  const urlId = uid("share-url");
  const urlInput = h("input", { id: urlId, type: "text", readonly: true, class: "mono", "data-testid": "share-url" });
  const copyButton = h("button", { type: "button", class: "btn", "data-testid": "copy-link" }, icon("copy"), h("span", { class: "btn-label" }, "Copy link"));
  const resultNote = h("p", { class: "hint" });
  const result = h(
    "div",
    { class: "share-result", hidden: true, "data-testid": "share-result" },
    h("label", { for: urlId }, "Your new link"),
    h("div", { class: "copy-row" }, urlInput, copyButton),
    resultNote,
  );

  const listHeadingId = uid("share-list-title");
  const list = h("ul", { class: "share-list", "aria-labelledby": listHeadingId, "data-testid": "share-list" });
  const listStatus = h("p", { class: "hint" }, "Loading links…");

  const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close" }, icon("x"));
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": titleId, "data-testid": "share-dialog" },
    h("div", { class: "dialog-head" }, h("h2", { id: titleId, class: "dialog-title" }, "Share ", h("span", { class: "dialog-file" }, file.name)), close),
    h("p", { class: "dialog-text" }, "Anyone with the link can download this file until it expires. No account needed."),
    form,
    result,
    h("h3", { id: listHeadingId, class: "subheading" }, "Links to this file"),
    listStatus,
    list,
  );

  const showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
  };

  copyButton.addEventListener("click", async () => {
    const ok = await copyText(urlInput.value);
    if (ok) {
      copyButton.querySelector(".btn-label").textContent = "Copied";
      announce("Link copied to the clipboard");
      setTimeout(() => {
        copyButton.querySelector(".btn-label").textContent = "Copy link";
      }, 2000);
    } else {
      urlInput.focus();
      urlInput.select();
      announce("Couldn't copy automatically. The link is selected: press Control C or Command C to copy it.");
    }
  });

  const renderShares = (items) => {
    const shares = items.map(normalizeShare);
    shares.sort((a, b) => Number(b.active) - Number(a.active) || (toDate(b.createdAt)?.getTime() || 0) - (toDate(a.createdAt)?.getTime() || 0));
    listStatus.textContent = shares.length ? "" : "No links yet.";
    listStatus.hidden = shares.length > 0;
    replaceChildren(
      list,
      shares.map((share) => {
        const details = [];
        if (share.active && share.expiresAt) {
          details.push(`Expires ${formatDateTime(share.expiresAt)} (${formatRelative(share.expiresAt)})`);
        }
        details.push(downloadsText(share));
        if (share.createdAt) details.push(`made ${formatRelative(share.createdAt)}`);
        const item = h(
          "li",
          { class: `share-item${share.active ? "" : " is-inactive"}`, "data-testid": "share-item", "data-share-id": share.id },
          h(
            "div",
            { class: "share-info" },
            h("p", { class: "share-title" }, share.active ? "Active link" : share.state),
            h("p", { class: "hint" }, details.join(" · ")),
          ),
        );
        const actions = h("div", { class: "share-actions" });
        if (share.url && share.active) {
          const copy = h("button", { type: "button", class: "btn btn-small" }, icon("copy"), h("span", { class: "btn-label" }, "Copy"), h("span", { class: "visually-hidden" }, " link"));
          copy.addEventListener("click", async () => announce((await copyText(share.url)) ? "Link copied" : "Couldn't copy the link"));
          actions.append(copy);
        }
        if (share.id && share.active) {
          const revoke = h("button", { type: "button", class: "btn btn-small btn-quiet-danger", "data-testid": "revoke-share" }, icon("x"), h("span", { class: "btn-label" }, "Revoke"), h("span", { class: "visually-hidden" }, ` link made ${formatRelative(share.createdAt) || ""}`));
          revoke.addEventListener("click", () => revokeShare(share, revoke));
          actions.append(revoke);
        }
        item.append(actions);
        return item;
      }),
    );
  };

  const loadShares = async () => {
    try {
      const data = await api.listShares(file.fileId);
      renderShares(Array.isArray(data?.items) ? data.items : Array.isArray(data) ? data : []);
    } catch (err) {
      listStatus.hidden = false;
      listStatus.textContent = `Couldn't load the links: ${err.message}`;
    }
  };

  const revokeShare = async (share, button) => {
    const confirmed = await confirmDialog({
      title: "Revoke this link?",
      message: "People who have it will no longer be able to download the file. You can make a new link at any time.",
      confirmLabel: "Revoke link",
    });
    if (!confirmed) return;
    await withBusy(button, "Revoking…", async () => {
      try {
        await api.revokeShare(share.id);
        announce("Link revoked");
      } catch (err) {
        // A 404 means it is gone already, which is what was asked. Other errors show inside the dialog:
        // page toasts sit behind the modal.
        if (err.status !== 404) {
          showError(`Couldn't revoke the link: ${err.message}`);
          return;
        }
      }
      await loadShares();
      createButton.focus();
    });
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const limitValue = limit.value.trim();
    let maxDownloads = null;
    if (limitValue) {
      maxDownloads = Number(limitValue);
      if (!Number.isInteger(maxDownloads) || maxDownloads < 1) {
        limit.setAttribute("aria-invalid", "true");
        showError("The download limit must be a whole number of 1 or more, or empty for no limit.");
        limit.focus();
        return;
      }
    }
    limit.removeAttribute("aria-invalid");
    await withBusy(createButton, "Creating…", async () => {
      try {
        const created = await api.createShare(file.fileId, Number(expiry.value), maxDownloads);
        urlInput.value = shareLink(created);
        resultNote.textContent = `Works until ${formatDateTime(created.expiresAt)}${maxDownloads ? ` or ${maxDownloads} ${maxDownloads === 1 ? "download" : "downloads"}` : ""}. Copy it now: for safety the full link is shown only once.`;
        result.hidden = false;
        announce("Link created. Use Copy link to copy it.");
        copyButton.focus();
        await loadShares();
      } catch (err) {
        showError(err.status === 409 ? "This file can't be shared until it is ready." : `Couldn't create the link: ${err.message}`);
      }
    });
  });

  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    openDialog = null;
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  openDialog = dialog;
  dialog.showModal();
  expiry.focus();
  loadShares();
  return dialog;
}
