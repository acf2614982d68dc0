// The public page behind a request link (/r/{token}): the password if the link has one, the note of the
// person asking, then files to send, each with its progress and, once checked, its outcome. No sign-in.

import { Api, ApiError } from "./api.js";
import { h, icon, replaceChildren, setText, uid } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative } from "./format.js";
import { acceptAttribute, describeLimits } from "./limits.js";
import { loadLink, renderLocked, tokenFromPath } from "./linkpage.js";
import { announce } from "./ui.js";
import { Uploader } from "./upload.js";

const GONE_TEXT =
  "It may have expired, received all the files it takes, or been revoked. Ask the person who sent it for a new link.";
const STATUS_POLL_MS = 2000;
// Scanning takes seconds; after this long the page stops asking and says where to look instead.
const STATUS_POLL_LIMIT_MS = 30 * 60 * 1000;

/** The token from a /r/{token} path, or null for any other page. */
export function requestTokenFromPath(pathname) {
  return tokenFromPath(pathname, "r");
}

/**
 * The uploader's API over a request link's guest routes. Each upload's receipt stays in this page: it is
 * what shows the service the upload is this guest's. A guest cannot resume or delete an upload.
 */
export class GuestUploadApi {
  constructor(api, token, password, onIssued = () => {}) {
    this.api = api;
    this.token = token;
    this.password = password;
    this.onIssued = onIssued;
    this.receipts = new Map();
  }

  async createUpload(name, size, contentType) {
    const issued = await this.api.createGuestUpload(this.token, name, size, contentType, this.password);
    this.receipts.set(issued.fileId, issued.receipt);
    this.onIssued(size);
    return issued;
  }

  getUpload() {
    // Nothing to resume from: the uploader starts the file over as a new upload.
    return Promise.reject(new ApiError(404, "UploadNotFound", "This upload can't be resumed."));
  }

  signUploadParts(fileId, parts) {
    return this.api.signGuestUploadParts(this.token, fileId, this.receipts.get(fileId), parts);
  }

  completeUpload(fileId, uploadId, parts) {
    return this.api.completeGuestUpload(this.token, fileId, this.receipts.get(fileId), uploadId, parts);
  }

  abortUpload() {
    return Promise.resolve(null);
  }

  /** The outcome of each upload this page started, by fileId. */
  async outcomes(fileIds) {
    const uploads = fileIds.filter((fileId) => this.receipts.has(fileId)).map((fileId) => ({ fileId, receipt: this.receipts.get(fileId) }));
    if (!uploads.length) return new Map();
    const answer = await this.api.guestUploadStatus(this.token, uploads);
    return new Map((answer?.items || []).map((item) => [item.fileId, item]));
  }
}

export async function renderRequestPage(container, config, token) {
  const api = new Api(config.apiUrl);
  const link = await loadLink(container, "request", { loadingText: "Loading the request…", goneText: GONE_TEXT, load: () => api.getRequestLink(token) });
  if (!link) return;
  if (link.passwordRequired) {
    renderLocked(container, "request", {
      title: "A protected request · filepipe",
      heading: "This request is protected",
      text: "Enter the password you were given to send files.",
      unlock: (password) => api.unlockRequestLink(token, password),
      open: (unlocked, password) => new GuestPage(container, api, config, token, unlocked, password).render(true),
    });
    return;
  }
  new GuestPage(container, api, config, token, link, null).render(false);
}

/** How an upload stands, for the guest: the transfer while it runs, then the service's verdict. */
function outcomeView(transfer, outcome) {
  if (transfer.state === "rejected") return { label: "Not sent", tone: "warn", hint: transfer.error };
  if (transfer.state === "failed") return { label: "Upload failed", tone: "danger", hint: transfer.error };
  if (transfer.state === "cancelled") return { label: "Cancelled", tone: "warn", hint: "" };
  if (transfer.active) return { label: "Uploading", tone: "info", hint: "", busy: true };
  switch (outcome?.status) {
    case "READY":
      return { label: "Delivered", tone: "ok", hint: "It passed the checks and was delivered." };
    case "REJECTED":
      return { label: "Rejected", tone: "warn", hint: outcome.error?.message || "This file was not accepted." };
    case "QUARANTINED":
      return { label: "Quarantined", tone: "danger", hint: "Malware was found. The file was isolated and not delivered." };
    case "FAILED":
      return { label: "Not checked yet", tone: "warn", hint: "Checking it failed; the recipient's service will try again." };
    default:
      return { label: "Scanning…", tone: "info", hint: "Checking the type and scanning for malware.", busy: true };
  }
}

function finalStatus(outcome) {
  return ["READY", "REJECTED", "QUARANTINED", "FAILED"].includes(outcome?.status);
}

class GuestPage {
  constructor(container, api, config, token, link, password) {
    this.container = container;
    this.config = config;
    this.filesLeft = Number(link.filesLeft) || 0;
    this.bytesLeft = Number(link.bytesLeft) || 0;
    this.link = link;
    this.guestApi = new GuestUploadApi(api, token, password, (size) => this.#issued(size));
    this.uploader = new Uploader(this.guestApi, this.#limits());
    this.rows = new Map();
    this.outcomes = new Map();
    this.pollTimer = null;
    this.pollStarted = 0;
    this.uploader.addEventListener("add", (event) => this.#addRow(event.detail));
    this.uploader.addEventListener("finish", () => this.#schedulePoll());
    window.addEventListener("beforeunload", (event) => {
      if (this.uploader.busy) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  #limits() {
    const maxFileBytes = this.config.maxFileBytes ? Math.min(this.config.maxFileBytes, this.bytesLeft) : this.bytesLeft;
    return { maxFileBytes, allowedTypes: this.config.allowedTypes };
  }

  #limitsText() {
    const files = `${this.filesLeft} more ${this.filesLeft === 1 ? "file" : "files"}`;
    return `You can send ${files}, ${formatBytes(this.bytesLeft)} in all. The link works until ${formatDateTime(this.link.expiresAt)} (${formatRelative(this.link.expiresAt)}).`;
  }

  #issued(size) {
    this.filesLeft = Math.max(0, this.filesLeft - 1);
    this.bytesLeft = Math.max(0, this.bytesLeft - size);
    this.uploader.limits = this.#limits();
    this.#updateLimits();
  }

  #updateLimits() {
    setText(this.limitsLine, this.#limitsText());
    const full = this.filesLeft <= 0 || this.bytesLeft <= 0;
    this.picker.hidden = full;
    this.limitsLine.hidden = full;
    this.fullNote.hidden = !full;
  }

  render(focusHeading) {
    document.title = "Send files · filepipe";
    const limitsHint = describeLimits(this.#limits());
    const inputId = uid("request-file-input");
    const hintId = uid("request-limits-hint");
    this.input = h("input", {
      type: "file",
      multiple: true,
      id: inputId,
      class: "file-input",
      accept: acceptAttribute(this.config),
      "aria-describedby": hintId,
      "data-testid": "request-file-input",
    });
    this.input.addEventListener("change", () => {
      if (this.input.files?.length) this.addFiles([...this.input.files]);
      this.input.value = "";
    });
    this.limitsLine = h("p", { class: "hint", "data-testid": "request-limits" });
    this.picker = h(
      "div",
      { class: "dropzone request-dropzone", "data-testid": "request-dropzone" },
      icon("upload", "icon icon-hero"),
      h("p", { class: "dropzone-title" }, "Drop files here to send them"),
      h("p", { class: "dropzone-or" }, "or"),
      this.input,
      h("label", { for: inputId, class: "btn btn-primary" }, icon("plus"), "Choose files"),
      h("p", { class: "dropzone-hint", id: hintId }, limitsHint || "Files are checked before they are delivered."),
    );
    this.fullNote = h("p", { class: "banner tone-info", hidden: true, "data-testid": "request-full" }, "This link has taken all the files it can. Thank you.");
    this.list = h("ul", { class: "file-list request-uploads", "aria-labelledby": "request-sent-heading", "data-testid": "request-uploads" });
    this.sentHeading = h("h2", { id: "request-sent-heading", class: "subheading", hidden: true }, "Your files");
    const note = this.link.note
      ? h(
          "figure",
          { class: "request-note", "data-testid": "request-note" },
          h("figcaption", { class: "eyebrow" }, "Message from the person asking"),
          h("blockquote", {}, this.link.note),
        )
      : null;
    replaceChildren(
      this.container,
      h(
        "section",
        { class: "share-card share-card-wide request-card", "data-testid": "request-page", "aria-labelledby": "request-heading" },
        h("p", { class: "eyebrow" }, "Someone asked you for files"),
        h("h1", { id: "request-heading", class: "share-name", tabindex: "-1" }, "Send files"),
        note,
        this.limitsLine,
        this.picker,
        this.fullNote,
        this.sentHeading,
        this.list,
        h("p", { class: "share-note" }, icon("shield"), "Each file is scanned for malware before the recipient can open it. You see only your own files here."),
      ),
    );
    this.#updateLimits();
    this.#wireDrop();
    if (focusHeading) this.container.querySelector("h1").focus();
  }

  #wireDrop() {
    const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
    this.picker.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    this.picker.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      const files = [...(event.dataTransfer.files || [])];
      if (files.length) this.addFiles(files);
    });
  }

  /** Queue what the link can still take; the rest are listed as not sent, with the reason. */
  addFiles(files) {
    const pending = this.uploader.transfers.filter((transfer) => transfer.state === "queued").length;
    const room = Math.max(0, this.filesLeft - pending);
    const taken = files.slice(0, room);
    this.uploader.add(taken);
    const left = files.length - taken.length;
    if (left > 0) announce(`${left} ${left === 1 ? "file was" : "files were"} not added: the link takes ${room === 0 ? "no" : `only ${room}`} more.`);
    if (taken.length) announce(`${taken.length} ${taken.length === 1 ? "file" : "files"} added`);
  }

  #addRow(transfer) {
    const nameId = uid("request-file");
    const badge = h("span", { class: "badge", "data-testid": "request-upload-status" });
    const hint = h("p", { class: "file-hint", "data-testid": "request-upload-hint" });
    const progress = h("progress", { class: "progress", max: "100", "aria-labelledby": nameId });
    const progressWrap = h("div", { class: "progress-wrap", hidden: true }, progress);
    const row = h(
      "li",
      { class: "file-row request-upload", "data-testid": "request-upload", "aria-labelledby": nameId },
      h(
        "div",
        { class: "file-main" },
        h("div", { class: "file-title" }, h("p", { class: "file-name", id: nameId }, transfer.name), badge),
        h("p", { class: "file-meta" }, formatBytes(transfer.size)),
        hint,
        progressWrap,
      ),
    );
    const entry = { row, badge, hint, progress, progressWrap, transfer, spoken: "" };
    this.rows.set(transfer, entry);
    this.list.append(row);
    this.sentHeading.hidden = false;
    transfer.addEventListener("change", () => this.#update(entry));
    this.#update(entry);
  }

  #update(entry) {
    const { transfer } = entry;
    const outcome = transfer.fileId ? this.outcomes.get(transfer.fileId) : null;
    const shown = outcomeView(transfer, outcome);
    entry.row.dataset.status = outcome?.status || `local-${transfer.state}`;
    setText(entry.badge, shown.label);
    entry.badge.className = `badge tone-${shown.tone}${shown.busy ? " is-busy" : ""}`;
    setText(entry.hint, shown.hint || "");
    entry.hint.hidden = !shown.hint;
    entry.hint.className = `file-hint tone-text-${shown.tone}`;
    entry.progressWrap.hidden = !transfer.active;
    if (transfer.active) entry.progress.value = transfer.size ? Math.floor((transfer.loaded / transfer.size) * 100) : 0;
    const spoken = `${transfer.name}: ${shown.label}${shown.hint && !shown.busy ? `. ${shown.hint}` : ""}`;
    if (!transfer.active && spoken !== entry.spoken) {
      entry.spoken = spoken;
      announce(spoken);
    }
  }

  #waiting() {
    return [...this.rows.keys()].filter((transfer) => transfer.state === "done" && !finalStatus(this.outcomes.get(transfer.fileId)));
  }

  #schedulePoll() {
    if (this.pollTimer || !this.#waiting().length) return;
    if (!this.pollStarted) this.pollStarted = Date.now();
    this.pollTimer = setTimeout(() => this.#poll(), STATUS_POLL_MS);
  }

  async #poll() {
    this.pollTimer = null;
    const waiting = this.#waiting();
    if (!waiting.length) {
      this.pollStarted = 0;
      return;
    }
    try {
      const found = await this.guestApi.outcomes(waiting.map((transfer) => transfer.fileId));
      for (const [fileId, outcome] of found) this.outcomes.set(fileId, outcome);
      for (const transfer of waiting) this.#update(this.rows.get(transfer));
    } catch {
      // The next round asks again; a link revoked meanwhile simply stops answering.
    }
    if (Date.now() - this.pollStarted < STATUS_POLL_LIMIT_MS) this.#schedulePoll();
  }
}
