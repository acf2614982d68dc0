// The signed-in page: the drop zone, the live file list, and what each file's row offers.

import { h, icon, replaceChildren, setText, uid } from "./dom.js";
import {
  formatBytes,
  formatDateTime,
  formatDuration,
  formatExactBytes,
  formatRelative,
  statusInfo,
  toDate,
  typeIcon,
  typeName,
} from "./format.js";
import { acceptAttribute, describeLimits } from "./limits.js";
import { sameFile, wrongFileMessage } from "./resume.js";
import { openRequestLinksDialog } from "./requests.js";
import { openShareDialog } from "./share.js";
import { announce, confirmDialog, copyText, toast, withBusy } from "./ui.js";
import { UsageLine } from "./usage.js";

const FAST_POLL_MS = 1000;
const HIDDEN_PENDING_POLL_MS = 5000;
const IDLE_POLL_START_MS = 5000;
const IDLE_POLL_MAX_MS = 60000;
const ERROR_POLL_MAX_MS = 30000;
const STALE_UPLOAD_MS = 60 * 60 * 1000;
// An upload from another tab or device is polled quickly for a while, then at the idle pace.
const OTHER_UPLOAD_FAST_POLL_MS = 5 * 60 * 1000;
const MAX_SINGLE_LOOKUPS = 20;

/** Newest first: creation time, then the id (ULIDs sort by time too). */
export function compareFiles(a, b) {
  const timeA = toDate(a.createdAt)?.getTime() || 0;
  const timeB = toDate(b.createdAt)?.getTime() || 0;
  if (timeA !== timeB) return timeB - timeA;
  return String(b.fileId).localeCompare(String(a.fileId));
}

/** The thumbnail closest to `size` px, or null. */
export function pickThumbnail(file, size) {
  const thumbs = Array.isArray(file?.thumbnails) ? file.thumbnails.filter((t) => t && t.url) : [];
  if (!thumbs.length) return null;
  return thumbs.reduce((best, t) => (Math.abs(Number(t.size) - size) < Math.abs(Number(best.size) - size) ? t : best));
}

/** The list merged with a fresh first page: gone files drop out, older pages already loaded stay. */
export function mergeFirstPage(current, page) {
  const fresh = new Map((page.items || []).map((file) => [file.fileId, file]));
  if (!page.nextToken) return fresh;
  const sorted = [...fresh.values()].sort(compareFiles);
  const oldest = sorted[sorted.length - 1];
  for (const [fileId, file] of current) {
    if (!fresh.has(fileId) && (!oldest || compareFiles(file, oldest) > 0)) fresh.set(fileId, file);
  }
  return fresh;
}

/** The sentence announced when a file's status changes. */
export function statusSentence(file) {
  const info = statusInfo(file.status);
  const reason = file.error?.message ? `: ${file.error.message}` : "";
  switch (file.status) {
    case "READY":
      return `${file.name} is ready`;
    case "REJECTED":
      return `${file.name} was rejected${reason}`;
    case "QUARANTINED":
      return `${file.name} was quarantined: malware was found`;
    case "FAILED":
      return `${file.name} failed to process${reason}`;
    default:
      return `${file.name}: ${info.label}`;
  }
}

const TRANSFER_STATES = {
  queued: { label: "Queued", tone: "info", hint: "Waiting for other uploads to finish" },
  starting: { label: "Uploading", tone: "info", hint: "Preparing the upload" },
  uploading: { label: "Uploading", tone: "info", hint: "" },
  completing: { label: "Uploading", tone: "info", hint: "Finishing the upload" },
  done: { label: "Uploaded", tone: "info", hint: "Waiting for processing to start" },
  rejected: { label: "Not uploaded", tone: "warn", hint: "" },
  failed: { label: "Upload failed", tone: "danger", hint: "" },
};
const INTERRUPTED = { label: "Upload interrupted", tone: "warn", hint: "" };

/** One file's row. Built once and updated in place, so polling never moves focus or reloads images. */
class FileRow {
  constructor(view) {
    this.view = view;
    this.entry = null;
    this.thumbUrl = null;
    this.detailsKey = "";
    const nameId = uid("file-name");
    this.name = h("p", { class: "file-name", id: nameId });
    this.meta = h("p", { class: "file-meta" });
    this.badge = h("span", { class: "badge", "data-testid": "file-status" });
    this.hint = h("p", { class: "file-hint", "data-testid": "file-hint" });
    this.progress = h("progress", { class: "progress", max: "100", "aria-labelledby": nameId });
    this.progressText = h("span", { class: "progress-text" });
    this.progressWrap = h("div", { class: "progress-wrap", hidden: true }, this.progress, this.progressText);
    this.thumb = h("div", { class: "thumb" });
    this.actions = h("div", { class: "file-actions" });
    this.detailsId = uid("details");
    this.details = h("div", { class: "file-details", id: this.detailsId, hidden: true, "data-testid": "file-details" });
    this.el = h(
      "li",
      { class: "file-row", "data-testid": "file-row", "aria-labelledby": nameId },
      this.thumb,
      h("div", { class: "file-main" }, h("div", { class: "file-title" }, this.name, this.badge), this.meta, this.hint, this.progressWrap),
      this.actions,
      this.details,
    );
    this.buttons = {};
    this.actionsKey = "";
  }

  update(entry) {
    this.entry = entry;
    const { file, transfer } = entry;
    const name = file?.name ?? transfer.name;
    const size = file?.size ?? transfer.size;
    const contentType = file?.contentType ?? transfer.contentType;
    this.el.dataset.fileId = file?.fileId || transfer?.fileId || "";
    this.el.dataset.status = file?.status || `local-${transfer.state}`;
    setText(this.name, name);
    this.name.title = name;

    const metaParts = [formatBytes(size), typeName(contentType)];
    const when = file?.createdAt || transfer?.createdAt;
    if (when) metaParts.push(formatRelative(when));
    if (file?.requestId) metaParts.push("sent through a request link");
    setText(this.meta, metaParts.filter(Boolean).join(" · "));

    const shown = this.#statusView(entry);
    setText(this.badge, shown.label);
    this.badge.className = `badge tone-${shown.tone}${shown.busy ? " is-busy" : ""}`;
    setText(this.hint, shown.hint);
    this.hint.hidden = !shown.hint;
    this.hint.className = `file-hint tone-text-${shown.tone}`;

    this.#updateProgress(transfer && transfer.active ? transfer : null);
    this.#updateThumb(file, contentType, name);
    this.#updateActions(entry);
    if (!this.details.hidden) this.#renderDetails();
  }

  #statusView({ file, transfer }) {
    if (transfer && (transfer.active || !file || transfer.state === "done")) {
      const state = transfer.resumable ? INTERRUPTED : TRANSFER_STATES[transfer.state] || TRANSFER_STATES.uploading;
      return { ...state, hint: transfer.error || state.hint, busy: transfer.active || transfer.state === "done" };
    }
    if (file.status === "UPLOADING" && this.view.canResume(file.fileId)) {
      return { ...INTERRUPTED, hint: `Choose ${file.name} again to send the parts that are missing.`, busy: false };
    }
    const info = statusInfo(file.status);
    let hint = info.hint;
    if (file.status === "REJECTED" && file.error?.message) hint = file.error.message;
    if (file.status === "FAILED" && file.error?.message) {
      hint = `${file.error.message.replace(/[.\s]+$/, "")}. The file is kept and an operator can retry it.`;
    }
    if (file.status === "UPLOADING") {
      const age = Date.now() - (toDate(file.updatedAt || file.createdAt)?.getTime() || Date.now());
      if (age > STALE_UPLOAD_MS) {
        return { label: "Upload incomplete", tone: "warn", hint: "The upload never finished. Delete it and upload the file again.", busy: false };
      }
    }
    return { label: info.label, tone: info.tone, hint, busy: info.pending };
  }

  #updateProgress(transfer) {
    this.progressWrap.hidden = !transfer;
    if (!transfer) return;
    const percent = transfer.size ? Math.floor((transfer.loaded / transfer.size) * 100) : 0;
    if (transfer.state === "queued" || transfer.state === "starting") {
      this.progress.removeAttribute("value");
    } else {
      this.progress.value = transfer.state === "completing" ? 100 : percent;
    }
    let text = "";
    if (transfer.state === "uploading") {
      text = `${formatBytes(transfer.loaded)} of ${formatBytes(transfer.size)}`;
      if (transfer.bytesPerSecond > 0) {
        text += ` · ${formatBytes(transfer.bytesPerSecond)}/s`;
        const left = transfer.secondsLeft;
        if (left !== null && Number.isFinite(left)) text += ` · ${formatDuration(left)} left`;
      }
    }
    setText(this.progressText, text);
  }

  #updateThumb(file, contentType, name) {
    const thumb = file?.status === "READY" ? pickThumbnail(file, 256) : null;
    if (thumb && this.thumbUrl === null) {
      // Presigned URLs change on every poll; the first one is kept so the image is not fetched again.
      this.thumbUrl = thumb.url;
      const img = h("img", { src: thumb.url, alt: "", loading: "lazy", decoding: "async", width: "56", height: "56" });
      img.addEventListener("error", () => {
        this.thumbUrl = null;
        replaceChildren(this.thumb, icon(typeIcon(contentType), "icon icon-type"));
      }, { once: true });
      const button = h(
        "button",
        { type: "button", class: "thumb-button", "aria-label": `Preview ${name}` },
        img,
      );
      button.addEventListener("click", () => this.view.preview(this.entry.file));
      replaceChildren(this.thumb, button);
      this.thumb.dataset.kind = "image";
    } else if (!thumb && this.thumb.dataset.kind !== typeIcon(contentType)) {
      this.thumbUrl = null;
      this.thumb.dataset.kind = typeIcon(contentType);
      replaceChildren(this.thumb, icon(typeIcon(contentType), "icon icon-type"));
    }
  }

  #button(key, label, iconName, name, onClick, extra = {}) {
    if (!this.buttons[key]) {
      // Secondary actions are icon-only to keep rows calm; their full name stays in the accessible name.
      const button = extra.iconOnly
        ? h(
            "button",
            { type: "button", class: `btn btn-small btn-icon ${extra.className || ""}`.trim(), "data-action": key, title: label, ...extra.attrs },
            icon(iconName),
            h("span", { class: "visually-hidden" }, `${label} ${name}`),
          )
        : h(
            "button",
            { type: "button", class: `btn btn-small ${extra.className || ""}`.trim(), "data-action": key, ...extra.attrs },
            icon(iconName),
            h("span", { class: "btn-label" }, label),
            h("span", { class: "visually-hidden" }, ` ${name}`),
          );
      button.addEventListener("click", (event) => onClick(event.currentTarget));
      this.buttons[key] = button;
    }
    return this.buttons[key];
  }

  #updateActions(entry) {
    const { file, transfer } = entry;
    const name = file?.name ?? transfer.name;
    const keys = [];
    if (transfer && (transfer.active || (!file && transfer.state !== "done"))) {
      if (["queued", "starting", "uploading"].includes(transfer.state)) keys.push("cancel");
      if (transfer.state === "failed") keys.push("retry");
      if (!transfer.active) keys.push("dismiss");
    } else if (file) {
      if (file.status === "READY") keys.push("download", "share");
      if (file.status === "UPLOADING" && this.view.canResume(file.fileId)) keys.push("resume");
      keys.push("details", "delete");
    }
    const key = keys.join(",");
    if (key === this.actionsKey) return;
    const focused = this.actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    this.actionsKey = key;
    const make = {
      cancel: () => this.#button("cancel", "Cancel", "x", name, () => this.view.cancelTransfer(this.entry.transfer)),
      retry: () => this.#button("retry", "Retry", "refresh", name, () => this.view.uploader.retry(this.entry.transfer)),
      resume: () =>
        this.#button("resume", "Resume", "upload", name, () => this.view.chooseToResume(this.entry.file), {
          className: "btn-primary",
        }),
      dismiss: () => this.#button("dismiss", "Dismiss", "x", name, () => this.view.dismissTransfer(this.entry.transfer)),
      download: () =>
        this.#button("download", "Download", "download", name, (button) => this.view.download(this.entry.file, button), {
          className: "btn-primary",
        }),
      share: () => this.#button("share", "Share", "link", name, (button) => openShareDialog(this.view.api, this.entry.file, button)),
      details: () =>
        this.#button("details", "Details", "info", name, () => this.toggleDetails(), {
          iconOnly: true,
          attrs: { "aria-expanded": "false", "aria-controls": this.detailsId },
        }),
      delete: () =>
        this.#button("delete", "Delete", "trash", name, (button) => this.view.deleteFile(this.entry.file, button), {
          className: "btn-quiet-danger",
          iconOnly: true,
        }),
    };
    replaceChildren(this.actions, keys.map((k) => make[k]()));
    if (!keys.includes("details")) this.details.hidden = true;
    // A button that moved away took focus with it; keep the keyboard user inside the row.
    if (focused && !keys.includes(focused)) (this.actions.querySelector("button") || this.el).focus?.();
  }

  toggleDetails() {
    const open = this.details.hidden;
    this.details.hidden = !open;
    this.buttons.details?.setAttribute("aria-expanded", String(open));
    if (open) this.#renderDetails();
  }

  #renderDetails() {
    const file = this.entry.file;
    if (!file) return;
    const rows = [["Size", `${formatBytes(file.size)} (${formatExactBytes(file.size)})`]];
    rows.push(["Detected type", file.contentType ? `${typeName(file.contentType)} (${file.contentType})` : "Not known yet"]);
    if (file.width && file.height) rows.push(["Dimensions", `${file.width} × ${file.height} px`]);
    if (file.pages) rows.push(["Pages", String(file.pages)]);
    rows.push(["Status", statusInfo(file.status).label + (file.error?.code ? ` (${file.error.code})` : "")]);
    if (file.sha256) rows.push(["SHA-256", file.sha256, "hash"]);
    rows.push(["Uploaded", formatDateTime(file.createdAt)]);
    if (file.updatedAt) rows.push(["Last change", formatDateTime(file.updatedAt)]);
    if (file.requestId) rows.push(["Sent through", `Request link ${file.requestId.slice(0, 12)}…`]);
    rows.push(["File ID", file.fileId, "mono"]);
    if (file.executionName) rows.push(["Processing run", file.executionName, "mono"]);
    const key = JSON.stringify(rows);
    if (key === this.detailsKey) return;
    this.detailsKey = key;
    const list = h("dl", { class: "details-list" });
    for (const [term, value, kind] of rows) {
      const dd = h("dd", { class: kind ? `mono ${kind === "hash" ? "hash" : ""}`.trim() : null }, value);
      if (kind === "hash") {
        const copy = h("button", { type: "button", class: "btn btn-small btn-inline" }, icon("copy"), h("span", { class: "btn-label" }, "Copy"), h("span", { class: "visually-hidden" }, " SHA-256"));
        copy.addEventListener("click", async () => {
          const ok = await copyText(value);
          if (ok) {
            announce("SHA-256 copied");
            toast("SHA-256 copied", "ok");
          } else {
            toast("Could not copy; select the text instead", "danger");
          }
        });
        dd.append(" ", copy);
      }
      list.append(h("div", { class: "details-item" }, h("dt", {}, term), dd));
    }
    replaceChildren(this.details, list);
  }
}

/** The drop zone, the list and the poller that keeps it current. */
export class FilesView {
  constructor({ api, uploader, limits }) {
    this.api = api;
    this.uploader = uploader;
    this.limits = limits;
    this.files = new Map();
    this.knownStatus = new Map();
    this.cancelledIds = new Set();
    // The list carries no presigned URLs: a READY image's thumbnails come from GET /files/{id}, once.
    this.thumbnails = new Map();
    this.thumbnailLookups = new Set();
    this.rows = new Map();
    this.rowsByTransfer = new WeakMap();
    this.loaded = false;
    this.nextToken = null;
    this.extraPages = false;
    this.pollTimer = null;
    this.idleDelay = IDLE_POLL_START_MS;
    this.errorDelay = 0;
    this.inflight = null;
    this.stopped = false;
    this.renderQueued = false;
    this.el = this.#build();
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.poke();
    };
    this.onTransferAdd = (event) => this.#watchTransfer(event.detail);
    this.onTransferFinish = (event) => this.#transferFinished(event.detail);
  }

  #build() {
    const limitsText = describeLimits(this.limits);
    this.input = h("input", {
      type: "file",
      multiple: true,
      id: "file-input",
      class: "file-input",
      accept: acceptAttribute(this.limits),
      "aria-describedby": limitsText ? "upload-limits" : null,
      "data-testid": "file-input",
    });
    this.input.addEventListener("change", () => {
      if (this.input.files?.length) this.addFiles([...this.input.files]);
      this.input.value = "";
    });
    // Opened by a row's Resume button, which names the file to choose; not a control of its own.
    this.resumeInput = h("input", { type: "file", hidden: true, tabindex: "-1", "data-testid": "resume-input" });
    this.resumeInput.addEventListener("change", () => {
      const picked = this.resumeInput.files?.[0];
      this.resumeInput.value = "";
      if (picked && this.resumeTarget) this.#resumeWith(this.resumeTarget, picked);
      this.resumeTarget = null;
    });
    this.dropzone = h(
      "div",
      { class: "dropzone", "data-testid": "dropzone" },
      icon("upload", "icon icon-hero"),
      h("p", { class: "dropzone-title" }, "Drop files here to upload"),
      h("p", { class: "dropzone-or" }, "or"),
      this.input,
      h("label", { for: "file-input", class: "btn btn-primary" }, icon("plus"), "Choose files"),
      limitsText ? h("p", { class: "dropzone-hint", id: "upload-limits" }, limitsText) : null,
      this.resumeInput,
    );
    this.#wireDrop();

    this.list = h("ul", { class: "file-list", "aria-labelledby": "files-heading", "data-testid": "file-list" });
    this.empty = h(
      "div",
      { class: "empty", hidden: true, "data-testid": "empty-state" },
      icon("folder", "icon icon-hero"),
      h("p", { class: "empty-title" }, "No files yet"),
      h("p", {}, "Uploads appear here with their progress, then their status while they are checked."),
    );
    this.loading = h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Loading your files…");
    this.banner = h("div", { class: "banner tone-warn", hidden: true, role: "status" });
    this.count = h("p", { class: "count", "data-testid": "file-count" });
    this.usage = new UsageLine(this.api);
    this.moreButton = h("button", { type: "button", class: "btn", hidden: true }, h("span", { class: "btn-label" }, "Load more files"));
    this.moreButton.addEventListener("click", () => this.loadMore());
    const refresh = h(
      "button",
      { type: "button", class: "btn btn-small btn-ghost", "data-testid": "refresh-files" },
      icon("refresh"),
      h("span", { class: "btn-label" }, "Refresh"),
    );
    refresh.addEventListener("click", () => withBusy(refresh, "Refreshing…", () => this.refresh({ manual: true })));
    const requests = h(
      "button",
      { type: "button", class: "btn btn-small btn-ghost", "data-testid": "open-requests" },
      icon("link"),
      h("span", { class: "btn-label" }, "Request files"),
    );
    requests.addEventListener("click", () => openRequestLinksDialog(this.api, requests));

    return h(
      "div",
      { class: "files-page" },
      h(
        "div",
        { class: "page-head" },
        h("div", {}, h("h1", { id: "files-heading", tabindex: "-1" }, "Your files"), this.count, this.usage.el),
        h("div", { class: "page-actions" }, requests, refresh),
      ),
      h(
        "section",
        { class: "panel upload-panel", "aria-labelledby": "upload-heading" },
        h("h2", { id: "upload-heading", class: "visually-hidden" }, "Upload files"),
        this.dropzone,
      ),
      h(
        "section",
        { class: "files-panel", "aria-labelledby": "files-heading" },
        this.banner,
        this.loading,
        this.empty,
        this.list,
        h("div", { class: "more" }, this.moreButton),
      ),
    );
  }

  #wireDrop() {
    // The whole window accepts drops, so a file let go slightly outside the box is not opened by the browser.
    let depth = 0;
    const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
    this.dragHandlers = {
      dragenter: (event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        depth += 1;
        document.body.classList.add("is-dragging");
      },
      dragover: (event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
      },
      dragleave: () => {
        depth = Math.max(0, depth - 1);
        if (!depth) document.body.classList.remove("is-dragging");
      },
      drop: (event) => {
        if (!hasFiles(event)) return;
        event.preventDefault();
        depth = 0;
        document.body.classList.remove("is-dragging");
        const files = [...(event.dataTransfer.files || [])];
        if (files.length) this.addFiles(files);
      },
    };
  }

  start() {
    this.stopped = false;
    for (const [type, handler] of Object.entries(this.dragHandlers)) window.addEventListener(type, handler);
    document.addEventListener("visibilitychange", this.onVisible);
    this.uploader.addEventListener("add", this.onTransferAdd);
    this.uploader.addEventListener("finish", this.onTransferFinish);
    for (const transfer of this.uploader.transfers) this.#watchTransfer(transfer);
    this.refresh();
    this.clock = setInterval(() => this.render(), 30000);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearInterval(this.clock);
    for (const [type, handler] of Object.entries(this.dragHandlers)) window.removeEventListener(type, handler);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.uploader.removeEventListener("add", this.onTransferAdd);
    this.uploader.removeEventListener("finish", this.onTransferFinish);
  }

  addFiles(files) {
    const added = this.uploader.add(files);
    const refused = added.filter((t) => t.state === "rejected");
    const resumed = added.filter((t) => t.resumed);
    const sending = added.length - refused.length - resumed.length;
    const parts = [];
    if (sending) parts.push(sending === 1 ? `Uploading ${added.find((t) => t.state !== "rejected" && !t.resumed).name}` : `Uploading ${sending} files`);
    for (const transfer of resumed) parts.push(`Resuming ${transfer.name}`);
    for (const transfer of refused) parts.push(`${transfer.name} not uploaded: ${transfer.error}`);
    announce(parts.join(". "));
  }

  /** Whether this browser can resume the unfinished upload of this file (it started it). */
  canResume(fileId) {
    return Boolean(this.uploader.unfinished?.get(fileId));
  }

  /** Ask for the file an interrupted upload was started with. */
  chooseToResume(file) {
    this.resumeTarget = file;
    this.resumeInput.click();
  }

  #resumeWith(file, picked) {
    const entry = this.uploader.unfinished?.get(file.fileId);
    if (!entry) {
      toast(`${file.name} can't be resumed any more. Delete it and upload the file again.`, "danger");
      this.render();
      return;
    }
    if (!sameFile(entry, picked)) {
      const message = wrongFileMessage(entry);
      announce(message);
      toast(message, "danger");
      return;
    }
    if (this.uploader.resume(picked, entry)) announce(`Resuming ${entry.name}`);
  }

  #watchTransfer(transfer) {
    transfer.addEventListener("change", () => this.scheduleRender());
    this.scheduleRender();
  }

  #transferFinished(transfer) {
    if (transfer.state === "done") {
      announce(`${transfer.name} uploaded. Processing starts now.`);
      if (transfer.fileId && !this.files.has(transfer.fileId)) {
        this.files.set(transfer.fileId, {
          fileId: transfer.fileId,
          name: transfer.name,
          size: transfer.size,
          contentType: transfer.contentType,
          status: "UPLOADING",
          createdAt: transfer.createdAt,
        });
        this.knownStatus.set(transfer.fileId, "UPLOADING");
      }
      this.poke();
    } else if (transfer.state === "failed") {
      announce(`${transfer.name}: upload ${transfer.resumable ? "interrupted" : "failed"}. ${transfer.error}`);
    } else if (transfer.state === "rejected") {
      announce(`${transfer.name} not uploaded: ${transfer.error}`);
    }
    this.scheduleRender();
  }

  cancelTransfer(transfer) {
    if (transfer.fileId) this.cancelledIds.add(transfer.fileId);
    transfer.cancel();
    this.uploader.remove(transfer);
    announce(`Upload of ${transfer.name} cancelled`);
    this.#focusAfterRemoval(this.rowsByTransfer.get(transfer));
    this.render();
    this.poke();
  }

  dismissTransfer(transfer) {
    this.#focusAfterRemoval(this.rowsByTransfer.get(transfer));
    this.uploader.remove(transfer);
    this.render();
  }

  /** Move focus to a neighbouring row (or the heading) before a row disappears. */
  #focusAfterRemoval(row) {
    if (!row || !row.el.contains(document.activeElement)) return;
    const neighbour = row.el.nextElementSibling || row.el.previousElementSibling;
    const target = neighbour?.querySelector(".file-actions button") || document.getElementById("files-heading");
    target?.focus();
  }

  async download(file, button) {
    await withBusy(button, "Preparing…", async () => {
      try {
        // Fetch a fresh presigned URL: the one from the list may be close to expiry.
        const fresh = await this.api.getFile(file.fileId);
        if (!fresh?.downloadUrl) {
          toast(`${file.name} can't be downloaded right now.`, "danger");
          return;
        }
        announce(`Downloading ${file.name}`);
        window.location.assign(fresh.downloadUrl);
      } catch (error) {
        toast(`Couldn't download ${file.name}: ${error.message}`, "danger");
      }
    });
  }

  async deleteFile(file, button) {
    const confirmed = await confirmDialog({
      title: `Delete ${file.name}?`,
      message: "The file, its previews and every share link to it are removed. This can't be undone.",
      confirmLabel: "Delete file",
    });
    if (!confirmed) return;
    await withBusy(button, "Deleting…", async () => {
      try {
        await this.api.deleteFile(file.fileId);
      } catch (error) {
        if (error.status !== 404) {
          toast(`Couldn't delete ${file.name}: ${error.message}`, "danger");
          return;
        }
      }
      this.#focusAfterRemoval(this.rows.get(file.fileId));
      this.files.delete(file.fileId);
      this.knownStatus.delete(file.fileId);
      announce(`${file.name} deleted`);
      toast(`${file.name} deleted`, "ok");
      this.render();
    });
  }

  async preview(file) {
    const opener = document.activeElement;
    let fresh;
    try {
      // Fresh URLs: the ones behind the row's thumbnail may have expired since.
      fresh = await this.api.getFile(file.fileId);
    } catch (error) {
      toast(`Couldn't show a preview of ${file.name}: ${error.message}`, "danger");
      return;
    }
    const large = pickThumbnail(fresh, 1024);
    if (!large) return;
    const titleId = uid("preview-title");
    const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close preview" }, icon("x"));
    const dialog = h(
      "dialog",
      { class: "dialog dialog-preview", "aria-labelledby": titleId, "data-testid": "preview-dialog" },
      h("div", { class: "dialog-head" }, h("h2", { id: titleId, class: "dialog-title" }, file.name), close),
      h("img", { src: large.url, alt: `Preview of ${file.name}`, width: large.width || null, height: large.height || null }),
    );
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
  }

  /** Poll again now (after an upload, a delete, or when the tab comes back), resetting the idle backoff. */
  poke() {
    this.idleDelay = IDLE_POLL_START_MS;
    this.refresh();
  }

  /** Whether a file's status may still change soon, so the list should be polled quickly. */
  #isPending(file) {
    if (this.cancelledIds.has(file.fileId) || !statusInfo(file.status).pending) return false;
    if (file.status !== "UPLOADING") return true;
    // Our own uploads in flight tell their progress themselves; abandoned ones will never move.
    if (this.uploader.transfers.some((t) => t.fileId === file.fileId && t.active)) return false;
    const age = Date.now() - (toDate(file.updatedAt || file.createdAt)?.getTime() || Date.now());
    return age < OTHER_UPLOAD_FAST_POLL_MS;
  }

  hasPending() {
    for (const file of this.files.values()) if (this.#isPending(file)) return true;
    return this.uploader.transfers.some((t) => t.state === "done");
  }

  #schedule() {
    if (this.stopped) return;
    clearTimeout(this.pollTimer);
    let delay;
    if (this.errorDelay) {
      delay = this.errorDelay;
    } else if (this.hasPending()) {
      delay = document.hidden ? HIDDEN_PENDING_POLL_MS : FAST_POLL_MS;
      this.idleDelay = IDLE_POLL_START_MS;
    } else {
      delay = document.hidden ? Math.max(this.idleDelay, 30000) : this.idleDelay;
      this.idleDelay = Math.min(this.idleDelay * 2, IDLE_POLL_MAX_MS);
    }
    this.pollTimer = setTimeout(() => this.refresh(), delay);
  }

  refresh({ manual = false } = {}) {
    if (this.inflight) return this.inflight;
    clearTimeout(this.pollTimer);
    this.inflight = this.#fetchFirstPage(manual).finally(() => {
      this.inflight = null;
      this.#schedule();
    });
    return this.inflight;
  }

  async #fetchFirstPage(manual) {
    try {
      const page = await this.api.listFiles();
      const merged = mergeFirstPage(this.files, page);
      // Pending files kept from later pages ("Load more") are not in this answer: look them up one by one.
      const onFirstPage = new Set((page.items || []).map((file) => file.fileId));
      const stale = [...merged.values()].filter((file) => !onFirstPage.has(file.fileId) && this.#isPending(file));
      for (const file of stale.slice(0, MAX_SINGLE_LOOKUPS)) {
        try {
          merged.set(file.fileId, await this.api.getFile(file.fileId));
        } catch (error) {
          if (error.status === 404) merged.delete(file.fileId);
        }
      }
      if (!this.extraPages) this.nextToken = page.nextToken || null;
      if (!page.nextToken) {
        this.nextToken = null;
        this.extraPages = false;
      }
      this.#accept(merged);
      this.usage.refresh();
      this.errorDelay = 0;
      this.#showBanner("");
      if (manual) announce("File list refreshed");
    } catch (error) {
      if (error.status === 401) return;
      this.errorDelay = Math.min(ERROR_POLL_MAX_MS, Math.max(2000, this.errorDelay * 2));
      this.#showBanner(`Can't refresh the list: ${error.message} Trying again in ${Math.round(this.errorDelay / 1000)} s.`);
      if (manual) toast(`Couldn't refresh: ${error.message}`, "danger");
    }
  }

  async loadMore() {
    if (!this.nextToken) return;
    await withBusy(this.moreButton, "Loading…", async () => {
      try {
        const page = await this.api.listFiles(this.nextToken);
        const merged = new Map(this.files);
        for (const file of page.items || []) merged.set(file.fileId, file);
        this.nextToken = page.nextToken || null;
        this.extraPages = true;
        this.#accept(merged);
        announce(`${(page.items || []).length} more files loaded`);
      } catch (error) {
        toast(`Couldn't load more files: ${error.message}`, "danger");
      }
    });
  }

  #accept(files) {
    for (const id of this.cancelledIds) {
      if (!files.has(id)) this.cancelledIds.delete(id);
    }
    for (const [fileId, file] of files) {
      const before = this.knownStatus.get(fileId);
      if (this.loaded && before && before !== file.status && !this.cancelledIds.has(fileId)) {
        announce(statusSentence(file));
      }
      this.knownStatus.set(fileId, file.status);
    }
    for (const fileId of this.knownStatus.keys()) {
      if (!files.has(fileId)) this.knownStatus.delete(fileId);
    }
    // An upload that moved on (or went, deleted elsewhere) has nothing left to resume; one a transfer of
    // this page is sending may be newer than this list.
    for (const entry of this.uploader.unfinished?.list() || []) {
      const file = files.get(entry.fileId);
      const sending = this.uploader.transfers.some((transfer) => transfer.fileId === entry.fileId);
      if ((file && file.status !== "UPLOADING") || (!file && !this.nextToken && !sending)) this.uploader.unfinished.forget(entry.fileId);
    }
    for (const fileId of this.thumbnails.keys()) {
      if (!files.has(fileId)) this.thumbnails.delete(fileId);
    }
    this.#applyThumbnails(files);
    this.files = files;
    this.loaded = true;
    // Transfers whose server record has moved past UPLOADING have nothing more to tell.
    for (const transfer of [...this.uploader.transfers]) {
      const file = transfer.fileId && files.get(transfer.fileId);
      if (transfer.state === "done" && file && file.status !== "UPLOADING") this.uploader.remove(transfer);
    }
    this.render();
    this.#lookUpThumbnails();
  }

  #applyThumbnails(files) {
    for (const file of files.values()) {
      if (!file.thumbnails && this.thumbnails.has(file.fileId)) file.thumbnails = this.thumbnails.get(file.fileId);
    }
  }

  /** Fetch the thumbnail URLs of READY images not looked up yet, a bounded number at a time. */
  async #lookUpThumbnails() {
    const wanted = [...this.files.values()]
      .filter((file) => file.status === "READY" && String(file.contentType).startsWith("image/"))
      .filter((file) => !file.thumbnails && !this.thumbnails.has(file.fileId) && !this.thumbnailLookups.has(file.fileId))
      .slice(0, MAX_SINGLE_LOOKUPS);
    if (!wanted.length) return;
    await Promise.all(
      wanted.map(async (file) => {
        this.thumbnailLookups.add(file.fileId);
        try {
          const fresh = await this.api.getFile(file.fileId);
          this.thumbnails.set(file.fileId, Array.isArray(fresh?.thumbnails) ? fresh.thumbnails : []);
        } catch (error) {
          // A file deleted meanwhile has nothing to show; other errors are retried on the next poll.
          if (error.status === 404) this.thumbnails.set(file.fileId, []);
        } finally {
          this.thumbnailLookups.delete(file.fileId);
        }
      }),
    );
    if (this.stopped) return;
    this.#applyThumbnails(this.files);
    this.render();
  }

  #showBanner(text) {
    setText(this.banner, text);
    this.banner.hidden = !text;
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  #entries() {
    const byFileId = new Map();
    const localOnly = [];
    const hidden = new Set(this.cancelledIds);
    for (const transfer of this.uploader.transfers) {
      if (transfer.state === "cancelled") continue;
      const failed = transfer.state === "failed" || transfer.state === "rejected";
      // A failed upload's half-made record is being removed: the local row tells the story meanwhile.
      if (failed && transfer.fileId) hidden.add(transfer.fileId);
      if (!failed && transfer.fileId && this.files.has(transfer.fileId)) byFileId.set(transfer.fileId, transfer);
      else localOnly.push(transfer);
    }
    const files = [...this.files.values()].filter((file) => !hidden.has(file.fileId)).sort(compareFiles);
    // A poll can list an upload's new record before this page has read the answer that names it: pair
    // the record with the transfer still starting for the same file, so the file never shows twice.
    for (const file of files) {
      if (file.status !== "UPLOADING" || byFileId.has(file.fileId)) continue;
      const starting = localOnly.find((transfer) => transfer.state === "starting" && !transfer.fileId && transfer.name === file.name && transfer.size === file.size);
      if (!starting) continue;
      byFileId.set(file.fileId, starting);
      localOnly.splice(localOnly.indexOf(starting), 1);
    }
    const entries = localOnly.reverse().map((transfer) => ({ key: transfer.localId, transfer, file: null }));
    for (const file of files) entries.push({ key: file.fileId, file, transfer: byFileId.get(file.fileId) || null });
    return entries;
  }

  render() {
    const entries = this.#entries();
    const focused = this.list.contains(document.activeElement) ? document.activeElement : null;
    const rows = new Map();
    for (const entry of entries) {
      const row = (entry.transfer && this.rowsByTransfer.get(entry.transfer)) || this.rows.get(entry.key) || new FileRow(this);
      if (entry.transfer) this.rowsByTransfer.set(entry.transfer, row);
      rows.set(entry.key, row);
    }
    // Rows that went away leave first, so the rest stay put and only new rows are inserted.
    const kept = new Set(rows.values());
    for (const row of this.rows.values()) if (!kept.has(row)) row.el.remove();
    entries.forEach((entry, index) => {
      const row = rows.get(entry.key);
      row.update(entry);
      if (this.list.children[index] !== row.el) this.list.insertBefore(row.el, this.list.children[index] || null);
    });
    this.rows = rows;
    // Moving an element in the DOM blurs it; give focus back to the control that had it.
    if (focused && focused.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
    this.loading.hidden = this.loaded || entries.length > 0;
    this.empty.hidden = !this.loaded || entries.length > 0;
    this.list.hidden = entries.length === 0;
    this.moreButton.hidden = !this.nextToken;
    const count = this.files.size;
    const busy = [...this.files.values()].filter((file) => this.#isPending(file)).length + this.uploader.transfers.filter((t) => t.active).length;
    const summary = count ? `${count}${this.nextToken ? "+" : ""} ${count === 1 ? "file" : "files"}` : "";
    setText(this.count, this.loaded ? [summary, busy ? `${busy} in progress` : ""].filter(Boolean).join(" · ") : "");
  }
}
