// The share dialog: make a link (expiry, download limit, password, sliding expiry, notices, more files), copy
// it, and for each link of the file: change it, read its download log, revoke it.

import { h, icon, replaceChildren, uid } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative, toDate } from "./format.js";
import { DAY, EXPIRY_CHOICES, MAX_PASSWORD, MIN_PASSWORD, checkField, expirySelect, newLinkBox, passwordFrom, revokeAfterAsking, showModal } from "./linkdialog.js";
import { announce, copyText, withBusy } from "./ui.js";

export const NOTIFY_CHOICES = [
  { value: "", label: "No" },
  { value: "FIRST", label: "On the first download" },
  { value: "EVERY", label: "On every download" },
];
const MAX_FILES = 20;

/** The link for a freshly made share: the API's URL, else one built on this site's /s/ route. */
export function shareLink(created) {
  if (created.url) return created.url;
  return `${window.location.origin}/s/${encodeURIComponent(created.token)}`;
}

/**
 * A share from GET /files/{id}/shares in one shape: {shareId, createdAt, expiresAt, maxDownloads,
 * downloads, state: ACTIVE | EXPIRED | EXHAUSTED, passwordProtected, slidingExpirySeconds, notifyOn,
 * fileIds}. The service keeps only token hashes, so there is no URL to show again; other spellings are
 * accepted so an older or newer API still lists its links.
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
    latestExpiresAt: raw.latestExpiresAt ?? null,
    downloads: Number(downloads) || 0,
    maxDownloads: maxDownloads === null ? null : Number(maxDownloads),
    passwordProtected: Boolean(raw.passwordProtected),
    slidingExpirySeconds: raw.slidingExpirySeconds ? Number(raw.slidingExpirySeconds) : null,
    notifyOn: raw.notifyOn || "",
    fileCount: Array.isArray(raw.fileIds) ? raw.fileIds.length : 1,
    active: !expired && !exhausted && !raw.revoked,
    state: raw.revoked ? "Revoked" : expired ? "Expired" : exhausted ? "Download limit reached" : "Active",
  };
}

function downloadsText(share) {
  const used = `${share.downloads} ${share.downloads === 1 ? "download" : "downloads"}`;
  return share.maxDownloads ? `${share.downloads} of ${share.maxDownloads} downloads` : used;
}

function periodText(seconds) {
  const choice = EXPIRY_CHOICES.find((item) => item.seconds === seconds);
  if (choice) return choice.label;
  if (seconds % DAY === 0) return `${seconds / DAY} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hours`;
  return `${Math.round(seconds / 60)} minutes`;
}

/** The settings beyond expiry and limit, in words: "Password · Extends by 7 days per download · …". */
function settingsText(share) {
  const parts = [];
  if (share.fileCount > 1) parts.push(`${share.fileCount} files`);
  if (share.passwordProtected) parts.push("Password");
  if (share.slidingExpirySeconds) parts.push(`Extends by ${periodText(share.slidingExpirySeconds)} per download`);
  if (share.notifyOn === "FIRST") parts.push("Tells you on the first download");
  if (share.notifyOn === "EVERY") parts.push("Tells you on every download");
  return parts.join(" · ");
}

/** A download limit typed into `input`: null when empty, else a whole number of 1 or more. */
function limitFrom(input) {
  const text = input.value.trim();
  if (!text) return { value: null };
  const number = Number(text);
  if (!Number.isInteger(number) || number < 1 || number > 1_000_000) {
    return { error: "The download limit must be a whole number of 1 or more, or empty for no limit." };
  }
  return { value: number };
}

function select(attrs, choices, selectedValue) {
  return h(
    "select",
    attrs,
    choices.map((choice) => h("option", { value: String(choice.value ?? choice.seconds), selected: String(choice.value ?? choice.seconds) === String(selectedValue) }, choice.label)),
  );
}

function logTable(log) {
  const items = Array.isArray(log?.items) ? log.items : [];
  if (!items.length) return h("p", { class: "hint", "data-testid": "share-log-empty" }, "No downloads yet.");
  const kept = log.kept ? ` The last ${log.kept} downloads are kept, for ${log.keptDays} days.` : "";
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: "share-log", "data-testid": "share-log" },
      h("caption", {}, `Downloads, newest first (${log.downloads} in all).${kept}`),
      h("thead", {}, h("tr", {}, ["When", "File", "Browser", "System", "Country"].map((name) => h("th", { scope: "col" }, name)))),
      h(
        "tbody",
        {},
        items.map((entry) =>
          h(
            "tr",
            { "data-testid": "share-log-row" },
            h("td", {}, formatDateTime(entry.at)),
            h("td", { class: "share-log-file" }, entry.fileName || entry.fileId),
            h("td", {}, entry.browser),
            h("td", {}, entry.platform),
            h("td", {}, entry.country || "Unknown"),
          ),
        ),
      ),
    ),
  );
}

let openDialog = null;

/** Open the share dialog for a READY file; focus returns to `opener` when it closes. */
export function openShareDialog(api, file, opener) {
  openDialog?.close();
  const titleId = uid("share-title");
  const expiryId = uid("share-expiry");
  const limitId = uid("share-limit");
  const limitHintId = uid("share-limit-hint");
  const passwordId = uid("share-password");
  const passwordHintId = uid("share-password-hint");
  const notifyId = uid("share-notify");
  const errorId = uid("share-error");

  const expiry = expirySelect({ id: expiryId, name: "expiry", "data-testid": "share-expiry" });
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
  const password = h("input", {
    id: passwordId,
    name: "password",
    type: "password",
    autocomplete: "new-password",
    maxlength: String(MAX_PASSWORD),
    "aria-describedby": passwordHintId,
    "data-testid": "share-password",
  });
  const notify = select({ id: notifyId, name: "notifyOn", "data-testid": "share-notify" }, NOTIFY_CHOICES, "");
  const sliding = h("input", { id: uid("share-sliding"), type: "checkbox", name: "sliding", "data-testid": "share-sliding" });
  const moreList = h("div", { class: "more-files" });
  const more = h(
    "details",
    { class: "field more-files-box", hidden: true, "data-testid": "share-more-files" },
    h("summary", {}, "Add other files to this link"),
    h("fieldset", {}, h("legend", { class: "hint" }, `Ready files; a link holds at most ${MAX_FILES}.`), moreList),
  );
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
    h(
      "div",
      { class: "field" },
      h("label", { for: passwordId }, "Password ", h("span", { class: "optional" }, "(optional)")),
      password,
      h("p", { class: "hint", id: passwordHintId }, `At least ${MIN_PASSWORD} characters. Visitors must type it; send it to them separately.`),
    ),
    h("div", { class: "field" }, h("label", { for: notifyId }, "Tell me when it is downloaded"), notify),
    checkField(sliding, "Extend the link on each download", "Each download keeps the link open for the period above again, for at most 30 days in all."),
    more,
    h("div", { class: "form-actions" }, createButton),
    error,
  );

  const { box: result, urlInput, copyButton, note: resultNote } = newLinkBox({ label: "Your new link", testid: "share", copyTestid: "copy-link" });

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

  const loadOtherFiles = async () => {
    try {
      const page = await api.listFiles();
      const others = (Array.isArray(page?.items) ? page.items : []).filter((item) => item.status === "READY" && item.fileId !== file.fileId);
      replaceChildren(
        moreList,
        others.map((other) => {
          const box = h("input", { type: "checkbox", id: uid("share-more"), value: other.fileId, "data-testid": "share-more-file" });
          return h("label", { class: "more-file", for: box.id }, box, h("span", { class: "more-file-name" }, other.name), h("span", { class: "hint" }, formatBytes(other.size)));
        }),
      );
      more.hidden = others.length === 0;
    } catch {
      more.hidden = true; // the link can still hold this file alone
    }
  };

  // Which link's log is open, and which control to focus after the list is drawn again.
  const openLogs = new Set();
  let focusAfterRender = null;

  const renderShares = (items) => {
    const shares = items.map(normalizeShare);
    shares.sort((a, b) => Number(b.active) - Number(a.active) || (toDate(b.createdAt)?.getTime() || 0) - (toDate(a.createdAt)?.getTime() || 0));
    listStatus.textContent = shares.length ? "" : "No links yet.";
    listStatus.hidden = shares.length > 0;
    replaceChildren(list, shares.map((share) => renderShare(share)));
    if (focusAfterRender) {
      const [shareId, testid] = focusAfterRender;
      focusAfterRender = null;
      const target = [...list.querySelectorAll(`[data-testid="${testid}"]`)].find((el) => el.closest("li")?.dataset.shareId === shareId);
      (target || createButton).focus();
    }
  };

  const renderShare = (share) => {
    const details = [];
    if (share.active && share.expiresAt) {
      details.push(`Expires ${formatDateTime(share.expiresAt)} (${formatRelative(share.expiresAt)})`);
    }
    details.push(downloadsText(share));
    if (share.createdAt) details.push(`made ${formatRelative(share.createdAt)}`);
    const made = ` link made ${formatRelative(share.createdAt) || ""}`;
    const settings = settingsText(share);
    const item = h(
      "li",
      { class: `share-item${share.active ? "" : " is-inactive"}`, "data-testid": "share-item", "data-share-id": share.id },
      h(
        "div",
        { class: "share-info" },
        h("p", { class: "share-title" }, share.active ? "Active link" : share.state),
        h("p", { class: "hint" }, details.join(" · ")),
        settings ? h("p", { class: "hint share-settings", "data-testid": "share-settings" }, settings) : null,
      ),
    );
    const actions = h("div", { class: "share-actions" });
    const panel = h("div", { class: "share-panel", id: uid("share-panel"), hidden: true });
    const logPanel = h("div", { class: "share-panel", id: uid("share-log"), hidden: true });
    if (share.url && share.active) {
      const copy = h("button", { type: "button", class: "btn btn-small" }, icon("copy"), h("span", { class: "btn-label" }, "Copy"), h("span", { class: "visually-hidden" }, " link"));
      copy.addEventListener("click", async () => announce((await copyText(share.url)) ? "Link copied" : "Couldn't copy the link"));
      actions.append(copy);
    }
    if (share.id) {
      const edit = h(
        "button",
        { type: "button", class: "btn btn-small", "aria-expanded": "false", "aria-controls": panel.id, "data-testid": "edit-share" },
        h("span", { class: "btn-label" }, "Change"),
        h("span", { class: "visually-hidden" }, made),
      );
      edit.addEventListener("click", () => toggleEdit(share, edit, panel));
      const log = h(
        "button",
        { type: "button", class: "btn btn-small", "aria-expanded": "false", "aria-controls": logPanel.id, "data-testid": "share-log-button" },
        h("span", { class: "btn-label" }, "Downloads"),
        h("span", { class: "visually-hidden" }, ` of the${made}`),
      );
      log.addEventListener("click", () => toggleLog(share, log, logPanel));
      actions.append(edit, log);
      if (openLogs.has(share.id)) toggleLog(share, log, logPanel);
    }
    if (share.id && share.active) {
      const revoke = h("button", { type: "button", class: "btn btn-small btn-quiet-danger", "data-testid": "revoke-share" }, icon("x"), h("span", { class: "btn-label" }, "Revoke"), h("span", { class: "visually-hidden" }, made));
      revoke.addEventListener("click", () => revokeShare(share, revoke));
      actions.append(revoke);
    }
    item.append(actions, panel, logPanel);
    return item;
  };

  const toggleLog = async (share, button, panel) => {
    const opening = panel.hidden;
    button.setAttribute("aria-expanded", String(opening));
    panel.hidden = !opening;
    if (!opening) {
      openLogs.delete(share.id);
      return;
    }
    openLogs.add(share.id);
    replaceChildren(panel, h("p", { class: "hint", role: "status" }, "Loading the downloads…"));
    try {
      replaceChildren(panel, logTable(await api.listShareDownloads(share.id)));
    } catch (err) {
      replaceChildren(panel, h("p", { class: "form-error", role: "alert" }, `Couldn't load the downloads: ${err.message}`));
    }
  };

  const toggleEdit = (share, button, panel) => {
    if (!panel.hidden) {
      panel.hidden = true;
      replaceChildren(panel);
      button.setAttribute("aria-expanded", "false");
      return;
    }
    button.setAttribute("aria-expanded", "true");
    panel.hidden = false;
    const ids = { expiry: uid("edit-expiry"), limit: uid("edit-limit"), password: uid("edit-password"), notify: uid("edit-notify") };
    const keep = share.expiresAt ? `Keep: ${formatDateTime(share.expiresAt)}` : "Keep as it is";
    const newExpiry = select(
      { id: ids.expiry, "data-testid": "share-edit-expiry" },
      [{ value: "", label: keep }, ...EXPIRY_CHOICES.map((choice) => ({ value: choice.seconds, label: `${choice.label} from now` }))],
      "",
    );
    const newLimit = h("input", {
      id: ids.limit,
      type: "number",
      min: "1",
      max: "1000000",
      step: "1",
      inputmode: "numeric",
      placeholder: "No limit",
      value: share.maxDownloads === null ? "" : String(share.maxDownloads),
      "data-testid": "share-edit-limit",
    });
    const newPassword = h("input", {
      id: ids.password,
      type: "password",
      autocomplete: "new-password",
      maxlength: String(MAX_PASSWORD),
      placeholder: share.passwordProtected ? "Leave empty to keep it" : "No password",
      "data-testid": "share-edit-password",
    });
    const removePassword = h("input", { id: uid("edit-no-password"), type: "checkbox", "data-testid": "share-edit-remove-password" });
    const newSliding = h("input", { id: uid("edit-sliding"), type: "checkbox", checked: Boolean(share.slidingExpirySeconds), "data-testid": "share-edit-sliding" });
    const newNotify = select({ id: ids.notify, "data-testid": "share-edit-notify" }, NOTIFY_CHOICES, share.notifyOn);
    const formError = h("p", { class: "form-error", role: "alert", hidden: true });
    const save = h("button", { type: "submit", class: "btn btn-primary btn-small", "data-testid": "save-share" }, h("span", { class: "btn-label" }, "Save changes"));
    const cancel = h("button", { type: "button", class: "btn btn-small" }, "Cancel");
    const editForm = h(
      "form",
      { class: "share-edit", novalidate: true, "aria-label": "Change this link" },
      h("div", { class: "field" }, h("label", { for: ids.expiry }, "Expiry"), newExpiry),
      h("div", { class: "field" }, h("label", { for: ids.limit }, "Download limit ", h("span", { class: "optional" }, "(empty: none)")), newLimit),
      h("div", { class: "field" }, h("label", { for: ids.password }, share.passwordProtected ? "New password" : "Password"), newPassword),
      share.passwordProtected ? checkField(removePassword, "Remove the password") : null,
      h("div", { class: "field" }, h("label", { for: ids.notify }, "Tell me when it is downloaded"), newNotify),
      checkField(newSliding, "Extend the link on each download"),
      formError,
      h("div", { class: "form-actions" }, save, cancel),
    );
    replaceChildren(panel, editForm);
    cancel.addEventListener("click", () => {
      toggleEdit(share, button, panel);
      button.focus();
    });
    editForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fail = (message, field) => {
        formError.textContent = message;
        formError.hidden = false;
        field?.setAttribute("aria-invalid", "true");
        field?.focus();
      };
      formError.hidden = true;
      const changes = {};
      if (newExpiry.value) changes.expiresInSeconds = Number(newExpiry.value);
      const limitValue = limitFrom(newLimit);
      if (limitValue.error) return fail(limitValue.error, newLimit);
      if (limitValue.value !== share.maxDownloads) changes.maxDownloads = limitValue.value;
      const passwordValue = passwordFrom(newPassword);
      if (passwordValue.error) return fail(passwordValue.error, newPassword);
      if (passwordValue.value) changes.password = passwordValue.value;
      else if (removePassword.checked) changes.password = null;
      if (newSliding.checked !== Boolean(share.slidingExpirySeconds)) {
        changes.slidingExpirySeconds = newSliding.checked ? changes.expiresInSeconds || 7 * DAY : null;
      }
      if ((newNotify.value || "") !== share.notifyOn) changes.notifyOn = newNotify.value || null;
      if (!Object.keys(changes).length) return fail("Nothing to save: change a setting first.");
      await withBusy(save, "Saving…", async () => {
        try {
          await api.updateShare(share.id, changes);
        } catch (err) {
          fail(err.status === 404 ? "This link no longer exists." : `Couldn't save: ${err.message}`);
          return;
        }
        announce("Link changed");
        focusAfterRender = [share.id, "edit-share"];
        await loadShares();
      });
      return undefined;
    });
    newExpiry.focus();
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

  const revokeShare = (share, button) =>
    revokeAfterAsking(button, {
      title: "Revoke this link?",
      message: "People who have it will no longer be able to download the file. Its download log is deleted too. You can make a new link at any time.",
      revoke: () => api.revokeShare(share.id),
      revoked: "Link revoked",
      showError,
      after: async () => {
        openLogs.delete(share.id);
        await loadShares();
        createButton.focus();
      },
    });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    for (const field of [limit, password]) field.removeAttribute("aria-invalid");
    const invalid = (message, field) => {
      field.setAttribute("aria-invalid", "true");
      showError(message);
      field.focus();
    };
    const limitValue = limitFrom(limit);
    if (limitValue.error) return invalid(limitValue.error, limit);
    const passwordValue = passwordFrom(password);
    if (passwordValue.error) return invalid(passwordValue.error, password);
    const maxDownloads = limitValue.value;
    const seconds = Number(expiry.value);
    const settings = {};
    if (passwordValue.value) settings.password = passwordValue.value;
    if (sliding.checked) settings.slidingExpirySeconds = seconds;
    if (notify.value) settings.notifyOn = notify.value;
    const others = [...moreList.querySelectorAll("input:checked")].map((box) => box.value);
    if (others.length + 1 > MAX_FILES) return invalid(`A link holds at most ${MAX_FILES} files.`, moreList.querySelector("input:checked"));
    await withBusy(createButton, "Creating…", async () => {
      try {
        const created = others.length
          ? await api.createFilesShare([file.fileId, ...others], seconds, maxDownloads, settings)
          : await api.createShare(file.fileId, seconds, maxDownloads, settings);
        urlInput.value = shareLink(created);
        const limits = maxDownloads ? ` or ${maxDownloads} ${maxDownloads === 1 ? "download" : "downloads"}` : "";
        const extras = [];
        if (others.length) extras.push(`It holds ${others.length + 1} files.`);
        if (settings.password) extras.push("Send the password separately: it is not part of the link.");
        resultNote.textContent = `Works until ${formatDateTime(created.expiresAt)}${limits}. ${extras.join(" ")} Copy it now: for safety the full link is shown only once.`.replace(/\s+/g, " ");
        result.hidden = false;
        password.value = "";
        announce("Link created. Use Copy link to copy it.");
        copyButton.focus();
        await loadShares();
      } catch (err) {
        showError(err.status === 409 ? "Only files that are ready can be shared." : `Couldn't create the link: ${err.message}`);
      }
    });
    return undefined;
  });

  showModal(dialog, close, opener, () => {
    openDialog = null;
  });
  openDialog = dialog;
  expiry.focus();
  loadShares();
  loadOtherFiles();
  return dialog;
}
