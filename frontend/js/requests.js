// The request links dialog: make an upload-only link (expiry, file and size limits, password, note), copy it,
// and for each link see what it received, change its expiry, limits, password or note, or revoke it.

import { h, icon, replaceChildren, uid } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative, toDate } from "./format.js";
import { EXPIRY_CHOICES, MAX_PASSWORD, MIN_PASSWORD, checkField, expirySelect, newLinkBox, passwordFrom, revokeAfterAsking, showModal } from "./linkdialog.js";
import { announce, withBusy } from "./ui.js";

const MAX_FILES = 1000;
const MAX_NOTE = 1000;
const GB = 1024 ** 3;
export const SIZE_CHOICES = [
  { value: 100 * 1024 ** 2, label: "100 MB" },
  { value: GB, label: "1 GB", selected: true },
  { value: 5 * GB, label: "5 GB" },
  { value: 20 * GB, label: "20 GB" },
];
const STATES = { ACTIVE: "Open", EXPIRED: "Expired", USED_UP: "Full" };

/** The link for a freshly made request: the API's URL, else one built on this site's /r/ route. */
export function requestLink(created) {
  if (created.url) return created.url;
  return `${window.location.origin}/r/${encodeURIComponent(created.token)}`;
}

function receivedText(link) {
  const files = `${link.filesReceived} of ${link.maxFiles} ${link.maxFiles === 1 ? "file" : "files"}`;
  return `${files} · ${formatBytes(link.bytesReceived)} of ${formatBytes(link.maxBytes)}`;
}

let openDialog = null;

/** Open the request links dialog; focus returns to `opener` when it closes. */
export function openRequestLinksDialog(api, opener) {
  openDialog?.close();
  const ids = {
    title: uid("request-title"),
    expiry: uid("request-expiry"),
    files: uid("request-files"),
    filesHint: uid("request-files-hint"),
    size: uid("request-size"),
    password: uid("request-password"),
    passwordHint: uid("request-password-hint"),
    note: uid("request-note"),
    noteHint: uid("request-note-hint"),
    error: uid("request-error"),
    list: uid("request-list-title"),
  };
  const expiry = expirySelect({ id: ids.expiry, name: "expiry", "data-testid": "request-expiry" });
  const maxFiles = h("input", {
    id: ids.files,
    name: "maxFiles",
    type: "number",
    min: "1",
    max: String(MAX_FILES),
    step: "1",
    inputmode: "numeric",
    value: "10",
    "aria-describedby": ids.filesHint,
    "data-testid": "request-max-files",
  });
  const maxBytes = h(
    "select",
    { id: ids.size, name: "maxBytes", "data-testid": "request-max-bytes" },
    SIZE_CHOICES.map((choice) => h("option", { value: String(choice.value), selected: Boolean(choice.selected) }, choice.label)),
  );
  const password = h("input", {
    id: ids.password,
    name: "password",
    type: "password",
    autocomplete: "new-password",
    maxlength: String(MAX_PASSWORD),
    "aria-describedby": ids.passwordHint,
    "data-testid": "request-password",
  });
  const note = h("textarea", {
    id: ids.note,
    name: "note",
    rows: "3",
    maxlength: String(MAX_NOTE),
    "aria-describedby": ids.noteHint,
    "data-testid": "request-note",
  });
  const error = h("p", { class: "form-error", id: ids.error, role: "alert", hidden: true });
  const createButton = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "create-request" }, icon("link"), h("span", { class: "btn-label" }, "Create link"));
  const form = h(
    "form",
    { class: "share-form", novalidate: true, "aria-describedby": ids.error },
    h("div", { class: "field" }, h("label", { for: ids.expiry }, "Link expires after"), expiry),
    h(
      "div",
      { class: "field" },
      h("label", { for: ids.files }, "Most files"),
      maxFiles,
      h("p", { class: "hint", id: ids.filesHint }, `How many files guests may send in all (1 to ${MAX_FILES}).`),
    ),
    h("div", { class: "field" }, h("label", { for: ids.size }, "Most data in all"), maxBytes),
    h(
      "div",
      { class: "field" },
      h("label", { for: ids.password }, "Password ", h("span", { class: "optional" }, "(optional)")),
      password,
      h("p", { class: "hint", id: ids.passwordHint }, `At least ${MIN_PASSWORD} characters; send it to your guests separately.`),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: ids.note }, "Note for your guests ", h("span", { class: "optional" }, "(optional)")),
      note,
      h("p", { class: "hint", id: ids.noteHint }, "Shown on the upload page, for example what to send."),
    ),
    h("div", { class: "form-actions" }, createButton),
    error,
  );

  const { box: result, urlInput, copyButton, note: resultNote } = newLinkBox({ label: "Your new request link", testid: "request", copyTestid: "copy-request-link" });
  const list = h("ul", { class: "share-list", "aria-labelledby": ids.list, "data-testid": "request-list" });
  const listStatus = h("p", { class: "hint" }, "Loading links…");
  const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close" }, icon("x"));
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": ids.title, "data-testid": "requests-dialog" },
    h("div", { class: "dialog-head" }, h("h2", { id: ids.title, class: "dialog-title" }, "Request files"), close),
    h(
      "p",
      { class: "dialog-text" },
      "Anyone with a request link can send you files, without an account, until it expires or is full. They see only their own uploads; what they send is scanned before you can open it.",
    ),
    form,
    result,
    h("h3", { id: ids.list, class: "subheading" }, "Your request links"),
    listStatus,
    list,
  );

  const showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
  };

  const renderLink = (link) => {
    const active = link.state === "ACTIVE";
    const made = ` request link made ${formatRelative(link.createdAt) || ""}`;
    const details = [receivedText(link)];
    if (active) details.push(`expires ${formatDateTime(link.expiresAt)} (${formatRelative(link.expiresAt)})`);
    if (link.passwordProtected) details.push("Password");
    const item = h(
      "li",
      { class: `share-item${active ? "" : " is-inactive"}`, "data-testid": "request-item", "data-request-id": link.requestId },
      h(
        "div",
        { class: "share-info" },
        h("p", { class: "share-title" }, `${STATES[link.state] || link.state} request link`),
        link.note ? h("p", { class: "request-item-note", "data-testid": "request-item-note" }, link.note) : null,
        h("p", { class: "hint", "data-testid": "request-received" }, details.join(" · ")),
      ),
    );
    const panel = h("div", { class: "share-panel", id: uid("request-panel"), hidden: true });
    const change = h(
      "button",
      { type: "button", class: "btn btn-small", "aria-expanded": "false", "aria-controls": panel.id, "data-testid": "change-request" },
      h("span", { class: "btn-label" }, "Change"),
      h("span", { class: "visually-hidden" }, ` the${made}`),
    );
    change.addEventListener("click", () => toggleChange(link, change, panel));
    const revoke = h("button", { type: "button", class: "btn btn-small btn-quiet-danger", "data-testid": "revoke-request" }, icon("x"), h("span", { class: "btn-label" }, "Revoke"), h("span", { class: "visually-hidden" }, made));
    revoke.addEventListener("click", () => revokeLink(link, revoke));
    item.append(h("div", { class: "share-actions" }, change, revoke), panel);
    return item;
  };

  /** The fields of a link's Change panel, filled with what it has now; `changes()` names what differs. */
  const changeFields = (link) => {
    const field = (name) => uid(`request-change-${name}`);
    const ids = { expiry: field("expiry"), files: field("files"), size: field("size"), password: field("password"), passwordHint: field("password-hint"), removePassword: field("remove-password"), note: field("note") };
    const expiry = h(
      "select",
      { id: ids.expiry, "data-testid": "request-change-expiry" },
      h("option", { value: "", selected: true }, `Keep: ${link.state === "EXPIRED" ? "expired" : formatDateTime(link.expiresAt)}`),
      EXPIRY_CHOICES.map((choice) => h("option", { value: String(choice.seconds) }, `${choice.label} from now`)),
    );
    const files = h("input", { id: ids.files, type: "number", min: "1", max: String(MAX_FILES), step: "1", inputmode: "numeric", value: String(link.maxFiles), "data-testid": "request-change-files" });
    const sizes = SIZE_CHOICES.some((choice) => choice.value === link.maxBytes) ? SIZE_CHOICES : [{ value: link.maxBytes, label: formatBytes(link.maxBytes) }, ...SIZE_CHOICES];
    const size = h(
      "select",
      { id: ids.size, "data-testid": "request-change-size" },
      sizes.map((choice) => h("option", { value: String(choice.value), selected: choice.value === link.maxBytes }, choice.label)),
    );
    const password = h("input", { id: ids.password, type: "password", autocomplete: "new-password", maxlength: String(MAX_PASSWORD), "aria-describedby": ids.passwordHint, "data-testid": "request-change-password" });
    const removePassword = link.passwordProtected ? h("input", { id: ids.removePassword, type: "checkbox", "data-testid": "request-remove-password" }) : null;
    const note = h("textarea", { id: ids.note, rows: "3", maxlength: String(MAX_NOTE), "data-testid": "request-change-note" });
    note.value = link.note || "";
    const passwordHint = link.passwordProtected ? "Leave empty to keep the password it has." : `Optional; at least ${MIN_PASSWORD} characters.`;
    const view = [
      h("div", { class: "field" }, h("label", { for: ids.expiry }, "Expiry"), expiry),
      h("div", { class: "field" }, h("label", { for: ids.files }, "Most files"), files, h("p", { class: "hint" }, `It has received ${link.filesReceived}; fewer than that makes it full.`)),
      h("div", { class: "field" }, h("label", { for: ids.size }, "Most data in all"), size),
      h("div", { class: "field" }, h("label", { for: ids.password }, link.passwordProtected ? "New password" : "Password"), password, h("p", { class: "hint", id: ids.passwordHint }, passwordHint)),
      removePassword ? checkField(removePassword, "Remove the password") : null,
      h("div", { class: "field" }, h("label", { for: ids.note }, "Note for your guests"), note),
    ];
    /** What the panel changes, or {error, field} for the first value the service would refuse. */
    const changes = () => {
      const sent = {};
      if (expiry.value) sent.expiresInSeconds = Number(expiry.value);
      const count = Number(files.value.trim());
      if (!Number.isInteger(count) || count < 1 || count > MAX_FILES) return { error: `Most files must be a whole number from 1 to ${MAX_FILES}.`, field: files };
      if (count !== link.maxFiles) sent.maxFiles = count;
      if (Number(size.value) !== link.maxBytes) sent.maxBytes = Number(size.value);
      const typed = passwordFrom(password);
      if (typed.error) return { error: typed.error, field: password };
      if (typed.value) sent.password = typed.value;
      else if (removePassword?.checked) sent.password = null;
      const text = note.value.trim();
      if (text !== (link.note || "")) sent.note = text || null;
      return { sent };
    };
    return { view, changes, first: expiry };
  };

  const toggleChange = (link, button, panel) => {
    const opening = panel.hidden;
    button.setAttribute("aria-expanded", String(opening));
    panel.hidden = !opening;
    if (!opening) {
      replaceChildren(panel);
      return;
    }
    const fields = changeFields(link);
    const save = h("button", { type: "submit", class: "btn btn-small btn-primary", "data-testid": "save-request-changes" }, h("span", { class: "btn-label" }, "Save changes"));
    const form = h("form", { class: "share-form", novalidate: true }, ...fields.view, h("div", { class: "form-actions" }, save));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      showError("");
      const { sent, error: problem, field } = fields.changes();
      if (problem) {
        field.setAttribute("aria-invalid", "true");
        showError(problem);
        field.focus();
        return;
      }
      if (!Object.keys(sent).length) {
        toggleChange(link, button, panel);
        announce("Nothing changed");
        button.focus();
        return;
      }
      withBusy(save, "Saving…", async () => {
        try {
          await api.updateRequestLink(link.requestId, sent);
          announce("Request link changed");
          await loadLinks(link.requestId);
        } catch (err) {
          showError(`Couldn't change the link: ${err.message}`);
        }
      });
    });
    replaceChildren(panel, form);
    fields.first.focus();
  };

  const revokeLink = (link, button) =>
    revokeAfterAsking(button, {
      title: "Revoke this request link?",
      message: "Guests can no longer send files through it. Files it already brought stay in your files.",
      revoke: () => api.revokeRequestLink(link.requestId),
      revoked: "Request link revoked",
      showError,
      after: async () => {
        await loadLinks();
        createButton.focus();
      },
    });

  const loadLinks = async (focusRequestId = null) => {
    try {
      const answer = await api.listRequestLinks();
      const links = Array.isArray(answer?.items) ? answer.items : [];
      links.sort((a, b) => (toDate(b.createdAt)?.getTime() || 0) - (toDate(a.createdAt)?.getTime() || 0));
      listStatus.textContent = links.length ? "" : "No request links yet.";
      listStatus.hidden = links.length > 0;
      replaceChildren(list, links.map(renderLink));
      if (focusRequestId) {
        const item = [...list.querySelectorAll("[data-testid='request-item']")].find((el) => el.dataset.requestId === focusRequestId);
        (item?.querySelector("[data-testid='change-request']") || createButton).focus();
      }
    } catch (err) {
      listStatus.hidden = false;
      listStatus.textContent = `Couldn't load your request links: ${err.message}`;
    }
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    for (const field of [maxFiles, password, note]) field.removeAttribute("aria-invalid");
    const invalid = (message, field) => {
      field.setAttribute("aria-invalid", "true");
      showError(message);
      field.focus();
    };
    const files = Number(maxFiles.value.trim());
    if (!Number.isInteger(files) || files < 1 || files > MAX_FILES) return invalid(`Most files must be a whole number from 1 to ${MAX_FILES}.`, maxFiles);
    const settings = { expiresInSeconds: Number(expiry.value), maxFiles: files, maxBytes: Number(maxBytes.value) };
    const passwordValue = passwordFrom(password);
    if (passwordValue.error) return invalid(passwordValue.error, password);
    if (passwordValue.value) settings.password = passwordValue.value;
    if (note.value.trim()) settings.note = note.value.trim();
    await withBusy(createButton, "Creating…", async () => {
      try {
        const created = await api.createRequestLink(settings);
        urlInput.value = requestLink(created);
        const extra = settings.password ? " Send the password separately: it is not part of the link." : "";
        resultNote.textContent = `Takes ${files} ${files === 1 ? "file" : "files"} and ${formatBytes(settings.maxBytes)} until ${formatDateTime(created.expiresAt)}.${extra} Copy it now: for safety the full link is shown only once.`;
        result.hidden = false;
        password.value = "";
        announce("Request link created. Use Copy link to copy it.");
        copyButton.focus();
        await loadLinks();
      } catch (err) {
        showError(`Couldn't create the link: ${err.message}`);
      }
    });
    return undefined;
  });

  showModal(dialog, close, opener, () => {
    openDialog = null;
  });
  openDialog = dialog;
  expiry.focus();
  loadLinks();
  return dialog;
}
