// The public page behind a request link (/r/{token}): the password if the link has one, the note of the
// person asking, then files to send, each with its progress and, once checked, its outcome. No sign-in.

import { Api, ApiError } from "./api.js";
import { h, icon, replaceChildren, setText, uid } from "./dom.js";
import { formatBytes, formatDateTime, formatRelative } from "./format.js";
import { acceptAttribute, describeLimits } from "./limits.js";
import { loadLink, renderLocked, tokenFromPath } from "./linkpage.js";
import { browserStorage, GuestReceipts, linkStorageKey, sameFile, UnfinishedUploads, wrongFileMessage } from "./resume.js";
import { announce } from "./ui.js";
import { Uploader } from "./upload.js";

const GONE_TEXT =
  "It may have expired, received all the files it takes, or been revoked. Ask the person who sent it for a new link.";
const STATUS_POLL_MS = 2000;
// Scanning takes seconds; after this long the page stops asking and says where to look instead.
const STATUS_POLL_LIMIT_MS = 30 * 60 * 1000;
// What POST /requests/{token}/status answers for at once.
const STATUS_BATCH = 50;
// A link that takes no more files, for a guest with uploads of theirs to follow or resume.
const CLOSED = Object.freeze({ closed: true, filesLeft: 0, bytesLeft: 0 });

/** The token from a /r/{token} path, or null for any other page. */
export function requestTokenFromPath(pathname) {
  return tokenFromPath(pathname, "r");
}

/**
 * The uploader's API over a request link's guest routes. Each upload's receipt (kept in `receipts`, a
 * GuestReceipts) is what shows the service the upload is this guest's: with it they sign parts, resume
 * and follow the upload. A guest cannot delete an upload.
 */
export class GuestUploadApi {
  constructor(api, token, password, receipts, onIssued = () => {}) {
    this.api = api;
    this.token = token;
    this.password = password;
    this.receipts = receipts;
    this.onIssued = onIssued;
  }

  async createUpload(name, size, contentType) {
    const issued = await this.api.createGuestUpload(this.token, name, size, contentType, this.password);
    this.receipts.remember({ fileId: issued.fileId, receipt: issued.receipt, name, size });
    this.onIssued(size);
    return issued;
  }

  getUpload(fileId) {
    const receipt = this.receipts.get(fileId);
    // Without its receipt nothing can be resumed: the uploader starts the file over as a new upload.
    if (!receipt) return Promise.reject(new ApiError(404, "UploadNotFound", "This upload can't be resumed."));
    return this.api.getGuestUploadProgress(this.token, fileId, receipt);
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

  /** The outcome of each of the guest's uploads, by fileId. */
  async outcomes(fileIds) {
    const uploads = fileIds.map((fileId) => ({ fileId, receipt: this.receipts.get(fileId) })).filter((upload) => upload.receipt);
    const found = new Map();
    for (let start = 0; start < uploads.length; start += STATUS_BATCH) {
      const answer = await this.api.guestUploadStatus(this.token, uploads.slice(start, start + STATUS_BATCH));
      for (const item of answer?.items || []) found.set(item.fileId, item);
    }
    return found;
  }
}

/**
 * An upload this browser sent through the link before the page was loaded: `state` is "done" once it was
 * sent (the service says how it stands) or "interrupted" while its parts wait to be resumed.
 */
class EarlierUpload extends EventTarget {
  constructor(entry, state) {
    super();
    this.fileId = entry.fileId;
    this.name = entry.name;
    this.size = entry.size;
    this.state = state;
    this.entry = entry;
    this.active = false;
    this.loaded = 0;
  }
}

/** What this browser keeps of a guest's uploads through one link: their receipts and unfinished parts. */
async function guestBook(token) {
  const storage = browserStorage();
  const key = await linkStorageKey(token);
  return {
    receipts: new GuestReceipts(storage, key),
    unfinished: key ? new UnfinishedUploads(storage, `request.${key}`) : null,
  };
}

export async function renderRequestPage(container, config, token) {
  const api = new Api(config.apiUrl);
  const book = await guestBook(token);
  const load = async () => {
    try {
      return await api.getRequestLink(token);
    } catch (error) {
      // A link that takes no more files (expired or used up, not revoked) still answers for this browser's
      // uploads through it: the page shows them, to follow or resume.
      const uploads = book.receipts.list().slice(-STATUS_BATCH).map(({ fileId, receipt }) => ({ fileId, receipt }));
      if (error.status !== 404 || !uploads.length) throw error;
      const known = await api.guestUploadStatus(token, uploads).catch(() => null);
      if (known?.items?.length) return CLOSED;
      throw error;
    }
  };
  const link = await loadLink(container, "request", { loadingText: "Loading the request…", goneText: GONE_TEXT, load });
  if (!link) return;
  if (link.passwordRequired) {
    renderLocked(container, "request", {
      title: "A protected request · filepipe",
      heading: "This request is protected",
      text: "Enter the password you were given to send files.",
      unlock: (password) => api.unlockRequestLink(token, password),
      open: (unlocked, password) => new GuestPage(container, api, config, token, unlocked, password, book).render(true),
    });
    return;
  }
  new GuestPage(container, api, config, token, link, null, book).render(false);
}

/** How an upload stands, for the guest: the transfer while it runs, then the service's verdict. */
function outcomeView(transfer, outcome) {
  if (transfer.state === "interrupted") {
    return { label: "Upload interrupted", tone: "warn", hint: `Choose ${transfer.name} again to send the parts that are missing.` };
  }
  if (transfer.state === "rejected") return { label: "Not sent", tone: "warn", hint: transfer.error };
  if (transfer.state === "failed") return { label: "Upload failed", tone: "danger", hint: transfer.error };
  if (transfer.state === "cancelled") return { label: "Cancelled", tone: "warn", hint: "" };
  if (transfer.active) return { label: "Uploading", tone: "info", hint: "", busy: true };
  if (outcome?.status === "UPLOADING" && transfer instanceof EarlierUpload) {
    // Sent before a reload and never received whole (the page was closed mid-upload). Polling goes on, so
    // one that was received just before the reload moves on to scanning.
    return { label: "Not received", tone: "warn", hint: "Sending this file did not finish. Send it again." };
  }
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
  constructor(container, api, config, token, link, password, book) {
    this.container = container;
    this.config = config;
    this.filesLeft = Number(link.filesLeft) || 0;
    this.bytesLeft = Number(link.bytesLeft) || 0;
    this.link = link;
    this.book = book;
    this.guestApi = new GuestUploadApi(api, token, password, book.receipts, (size) => this.#issued(size));
    this.uploader = new Uploader(this.guestApi, this.#limits(), book.unfinished);
    this.resumeTarget = null;
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
    if (!this.link.closed) setText(this.limitsLine, this.#limitsText());
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
    const fullText = this.link.closed
      ? "This link takes no more files. What you sent through it from this browser is below."
      : "This link has taken all the files it can. Thank you.";
    this.fullNote = h("p", { class: "banner tone-info", hidden: true, "data-testid": "request-full" }, fullText);
    this.resumeInput = h("input", { type: "file", hidden: true, tabindex: "-1", "data-testid": "request-resume-input" });
    this.resumeInput.addEventListener("change", () => {
      const picked = this.resumeInput.files?.[0];
      this.resumeInput.value = "";
      if (picked && this.resumeTarget) this.#resumeWith(this.resumeTarget, picked);
      this.resumeTarget = null;
    });
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
        this.resumeInput,
        h("p", { class: "share-note" }, icon("shield"), "Each file is scanned for malware before the recipient can open it. You see only your own files here."),
      ),
    );
    this.#updateLimits();
    this.#wireDrop();
    this.#restore();
    if (focusHeading) this.container.querySelector("h1").focus();
  }

  /** Rows for what this browser sent through the link before: interrupted uploads first, to resume. */
  #restore() {
    const unfinished = new Map((this.book.unfinished?.list() || []).map((entry) => [entry.fileId, entry]));
    for (const sent of this.book.receipts.list()) {
      const entry = unfinished.get(sent.fileId);
      this.#addRow(entry ? new EarlierUpload(entry, "interrupted") : new EarlierUpload(sent, "done"));
    }
    this.#schedulePoll();
  }

  #resumeWith(earlier, picked) {
    if (!sameFile(earlier.entry, picked)) {
      announce(wrongFileMessage(earlier.entry));
      return;
    }
    if (this.uploader.resume(picked, earlier.entry)) announce(`Resuming ${earlier.name}`);
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

  /**
   * Queue what the link can still take; the rest are listed as not sent, with the reason. A file whose
   * upload was interrupted resumes it, and takes nothing more from the link.
   */
  addFiles(files) {
    const resuming = files.filter((file) => this.book.unfinished?.match(file));
    const fresh = files.filter((file) => !resuming.includes(file));
    const pending = this.uploader.transfers.filter((transfer) => transfer.state === "queued" && !transfer.resumed).length;
    const room = Math.max(0, this.filesLeft - pending);
    const taken = fresh.slice(0, room);
    this.uploader.add([...resuming, ...taken]);
    const left = fresh.length - taken.length;
    if (left > 0) announce(`${left} ${left === 1 ? "file was" : "files were"} not added: the link takes ${room === 0 ? "no" : `only ${room}`} more.`);
    for (const file of resuming) announce(`Resuming ${file.name}`);
    if (taken.length) announce(`${taken.length} ${taken.length === 1 ? "file" : "files"} added`);
  }

  #addRow(transfer) {
    const earlier = transfer.fileId ? [...this.rows.values()].find((entry) => entry.transfer.fileId === transfer.fileId) : null;
    const nameId = uid("request-file");
    const badge = h("span", { class: "badge", "data-testid": "request-upload-status" });
    const hint = h("p", { class: "file-hint", "data-testid": "request-upload-hint" });
    const progress = h("progress", { class: "progress", max: "100", "aria-labelledby": nameId });
    const progressWrap = h("div", { class: "progress-wrap", hidden: true }, progress);
    const actions = h("div", { class: "file-actions" });
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
      actions,
    );
    const entry = { row, badge, hint, progress, progressWrap, actions, action: null, transfer, spoken: "" };
    this.rows.set(transfer, entry);
    if (earlier) {
      // The upload goes on in this row's place; keyboard focus follows it.
      const hadFocus = earlier.row.contains(document.activeElement);
      earlier.row.replaceWith(row);
      this.rows.delete(earlier.transfer);
      if (hadFocus) entry.row.querySelector("button")?.focus();
    } else {
      this.list.append(row);
    }
    this.sentHeading.hidden = false;
    transfer.addEventListener("change", () => this.#update(entry));
    this.#update(entry);
  }

  /** The row's one action: resume an interrupted upload, or retry one whose parts are partly stored. */
  #updateAction(entry) {
    const { transfer } = entry;
    const action = transfer.state === "interrupted" ? "resume" : transfer.state === "failed" && transfer.resumable ? "retry" : null;
    if (action === entry.action) return;
    entry.action = action;
    if (!action) {
      replaceChildren(entry.actions);
      return;
    }
    const label = action === "resume" ? "Resume" : "Retry";
    const button = h(
      "button",
      { type: "button", class: "btn btn-small btn-primary", "data-action": action },
      icon(action === "resume" ? "upload" : "refresh"),
      h("span", { class: "btn-label" }, label),
      h("span", { class: "visually-hidden" }, ` ${transfer.name}`),
    );
    button.addEventListener("click", () => {
      if (action === "retry") {
        this.uploader.retry(transfer);
        return;
      }
      this.resumeTarget = transfer;
      this.resumeInput.click();
    });
    replaceChildren(entry.actions, button);
  }

  #update(entry) {
    const { transfer } = entry;
    this.#updateAction(entry);
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
      // Rows restored from before a reload speak when they change, not all at once as they appear.
      const restored = !entry.spoken && transfer instanceof EarlierUpload;
      entry.spoken = spoken;
      if (!restored) announce(spoken);
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
