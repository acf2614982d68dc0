// Sends files straight to storage: a presigned POST for small files, parallel presigned part PUTs for large ones.

import { ApiError } from "./api.js";
import { checkFile } from "./limits.js";

const PART_CONCURRENCY = 4;
const PART_ATTEMPTS = 3;
const FILE_CONCURRENCY = 3;
const PROGRESS_SAMPLE_MS = 250;
// POST /uploads/{fileId}/parts signs at most this many parts per call.
const MAX_SIGNED_PARTS = 100;

export class UploadCancelled extends Error {
  constructor() {
    super("Upload cancelled");
    this.name = "UploadCancelled";
  }
}

class TransferError extends Error {
  constructor(message, { retryable = false } = {}) {
    super(message);
    this.name = "TransferError";
    this.retryable = retryable;
  }
}

/** The upload being resumed had already been completed (its answer was lost on the way back). */
class AlreadyUploaded extends Error {}

/** The Message of an S3 XML error answer, or null. */
export function storageErrorMessage(text) {
  if (!text || !text.includes("<Error")) return null;
  try {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const code = doc.querySelector("Error > Code")?.textContent || "";
    const message = doc.querySelector("Error > Message")?.textContent || "";
    if (code === "EntityTooLarge") return "File is larger than the upload allows";
    if (code === "EntityTooSmall") return "File is smaller than the upload expects";
    return message || code || null;
  } catch {
    return null;
  }
}

/**
 * One XMLHttpRequest as a promise: fetch() cannot report upload progress. Resolves with the finished
 * request whatever its status; rejects on network failure or when `signal` aborts.
 */
function send({ method, url, body, signal, onProgress, headers = {} }) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new UploadCancelled());
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
    const onAbort = () => xhr.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const done = (callback) => {
      signal.removeEventListener("abort", onAbort);
      callback();
    };
    xhr.addEventListener("load", () => done(() => resolve(xhr)));
    xhr.addEventListener("error", () =>
      done(() => reject(new TransferError("The connection to storage failed", { retryable: true }))),
    );
    xhr.addEventListener("timeout", () =>
      done(() => reject(new TransferError("Storage took too long to answer", { retryable: true }))),
    );
    xhr.addEventListener("abort", () => done(() => reject(new UploadCancelled())));
    xhr.send(body);
  });
}

function failure(xhr) {
  const message = storageErrorMessage(xhr.responseText) || `Storage refused the upload (HTTP ${xhr.status})`;
  return new TransferError(message, { retryable: xhr.status >= 500 || xhr.status === 0 });
}

/** Presigned POST: the policy fields first, the file last, as S3 requires. */
export async function postSinglePart(plan, file, signal, onBytes) {
  const form = new FormData();
  for (const [name, value] of Object.entries(plan.fields || {})) form.append(name, value);
  form.append("file", file);
  const xhr = await send({
    method: "POST",
    url: plan.url,
    body: form,
    signal,
    // The multipart body is a little larger than the file; scale so the bar reaches the file's size.
    onProgress: (loaded, total) => onBytes(total ? Math.min(file.size, (loaded / total) * file.size) : loaded),
  });
  if (xhr.status < 200 || xhr.status >= 300) throw failure(xhr);
  onBytes(file.size);
}

const wait = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new UploadCancelled());
    }, { once: true });
  });

/** The SHA-256 of `buffer` in base64, as S3's x-amz-checksum-sha256 header carries it. */
export async function sha256Base64(buffer) {
  if (!globalThis.crypto?.subtle) {
    throw new TransferError("This page can't check large uploads here: open it over HTTPS");
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * Part URLs from the API, each signing its part's checksum. Parts asked for while a request is out wait
 * for the next one, so a few parts hashed together cost one call.
 */
export class PartSigner {
  constructor(api, fileId) {
    this.api = api;
    this.fileId = fileId;
    this.waiting = [];
    this.busy = false;
  }

  /** Resolves with `{partNumber, url, headers}` for a part with this checksum. */
  sign(partNumber, checksumSha256) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ partNumber, checksumSha256, resolve, reject });
      this.#flush();
    });
  }

  async #flush() {
    if (this.busy || !this.waiting.length) return;
    this.busy = true;
    const batch = this.waiting.splice(0, MAX_SIGNED_PARTS);
    try {
      const answer = await this.api.signUploadParts(
        this.fileId,
        batch.map(({ partNumber, checksumSha256 }) => ({ partNumber, checksumSha256 })),
      );
      const signed = new Map((answer?.parts || []).map((part) => [part.partNumber, part]));
      for (const item of batch) {
        const part = signed.get(item.partNumber);
        if (part) item.resolve(part);
        else item.reject(new TransferError(`The service did not sign part ${item.partNumber}`));
      }
    } catch (error) {
      for (const item of batch) item.reject(error);
    } finally {
      this.busy = false;
      this.#flush();
    }
  }
}

/** Whether a failed call to the API is worth repeating: no answer, throttling or a server fault. */
function retryableApiError(error) {
  return typeof error?.status === "number" && (error.status === 0 || error.status === 429 || error.status >= 500);
}

/**
 * Multipart: each part is read, hashed (SHA-256, the checksum storage verifies) and sent, a few at once,
 * transient failures retried, unless storage already holds it with that very checksum (`held`, from an
 * earlier attempt). Returns every part with its ETag and checksum, in order, for the complete call.
 * `onStored(partNumber)` tells of each part storage holds. The first part that keeps failing stops the
 * rest.
 */
export async function sendParts({ file, partSize, held, signer, signal, onBytes, onStored = () => {} }) {
  const size = Number(partSize);
  const count = Math.ceil(file.size / size);
  const done = new Map();
  const stop = new AbortController();
  // Parts still in flight when one fails settle after the transfer has failed: they report nothing more.
  const report = () => {
    if (!stop.signal.aborted) onBytes([...done.values()].reduce((sum, bytes) => sum + bytes, 0));
  };
  const abortAll = () => stop.abort();
  signal.addEventListener("abort", abortAll, { once: true });
  const results = [];
  let next = 1;

  const piece = (partNumber) => {
    const start = (partNumber - 1) * size;
    return file.slice(start, Math.min(start + size, file.size));
  };
  const checksumOf = async (blob) => {
    let bytes;
    try {
      bytes = await blob.arrayBuffer();
    } catch {
      throw new TransferError(`${file.name} can't be read any more (was it moved or changed?). Choose it again.`);
    }
    return sha256Base64(bytes);
  };

  const sendOne = async (partNumber) => {
    // The PUT streams the part from disk again (Chromium sends a Blob several times faster than the
    // ArrayBuffer that was hashed); should the file change in between, storage refuses the part.
    const body = piece(partNumber);
    const checksumSha256 = await checksumOf(body);
    if (stop.signal.aborted) throw new UploadCancelled();
    const stored = held.get(partNumber);
    if (stored && stored.checksumSha256 === checksumSha256 && stored.size === body.size) {
      done.set(partNumber, body.size);
      report();
      return { partNumber, etag: stored.etag, checksumSha256 };
    }
    for (let attempt = 1; ; attempt += 1) {
      try {
        const signed = await signer.sign(partNumber, checksumSha256);
        const xhr = await send({
          method: "PUT",
          url: signed.url,
          headers: signed.headers || {},
          body,
          signal: stop.signal,
          onProgress: (loaded) => {
            done.set(partNumber, loaded);
            report();
          },
        });
        if (xhr.status < 200 || xhr.status >= 300) throw failure(xhr);
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new TransferError("Storage did not return the part's ETag (check the bucket's CORS ExposeHeaders)");
        done.set(partNumber, body.size);
        report();
        return { partNumber, etag, checksumSha256 };
      } catch (error) {
        done.set(partNumber, 0);
        report();
        const retryable = (error instanceof TransferError && error.retryable) || retryableApiError(error);
        if (!retryable || attempt >= PART_ATTEMPTS || stop.signal.aborted) throw error;
        await wait(500 * 2 ** attempt, stop.signal);
      }
    }
  };

  const worker = async () => {
    while (next <= count) {
      const partNumber = next;
      next += 1;
      results.push(await sendOne(partNumber));
      onStored(partNumber);
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, count) }, worker));
  } catch (error) {
    stop.abort();
    throw signal.aborted ? new UploadCancelled() : error;
  } finally {
    signal.removeEventListener("abort", abortAll);
  }
  return results.sort((a, b) => a.partNumber - b.partNumber);
}

let localCounter = 0;

/**
 * One file on its way up. States: queued -> starting -> uploading -> completing -> done, or rejected
 * (refused before sending), failed, cancelled. Fires "change" on every visible change. A multipart
 * upload that fails is `resumable` when storage keeps its parts: a retry sends only the missing ones.
 */
export class Transfer extends EventTarget {
  constructor(file, contentType) {
    super();
    localCounter += 1;
    this.localId = `local-${localCounter}`;
    this.file = file;
    this.name = file.name;
    this.size = file.size;
    this.contentType = contentType;
    this.fileId = null;
    this.state = "queued";
    this.loaded = 0;
    this.bytesPerSecond = 0;
    this.error = "";
    this.createdAt = new Date().toISOString();
    this.controller = new AbortController();
    this.lastSample = null;
    this.running = null;
    this.ticket = null; // a presigned POST
    this.multipart = null; // {uploadId, partSize, partCount} once known
    this.resuming = false; // the next run asks which parts storage holds before sending
    this.resumed = false; // continues an upload started before (another page, an earlier attempt)
    this.resumable = false;
    this.partsStored = 0;
  }

  get key() {
    return this.fileId || this.localId;
  }

  get active() {
    return ["queued", "starting", "uploading", "completing"].includes(this.state);
  }

  /** Seconds left at the recent rate, or null while there is no rate yet. */
  get secondsLeft() {
    if (!this.bytesPerSecond) return null;
    return (this.size - this.loaded) / this.bytesPerSecond;
  }

  set(changes) {
    Object.assign(this, changes);
    this.dispatchEvent(new Event("change"));
  }

  progress(loaded) {
    if (!this.active) return; // a late byte count never revives a transfer that ended
    const now = performance.now();
    if (!this.lastSample) {
      this.lastSample = { at: now, loaded };
    } else if (now - this.lastSample.at >= PROGRESS_SAMPLE_MS) {
      const rate = ((loaded - this.lastSample.loaded) * 1000) / (now - this.lastSample.at);
      // Smoothed, so the time-left estimate does not jump on every event.
      this.bytesPerSecond = this.bytesPerSecond ? this.bytesPerSecond * 0.7 + rate * 0.3 : rate;
      this.lastSample = { at: now, loaded };
    }
    this.set({ loaded, state: "uploading" });
  }

  cancel() {
    if (!this.active) return;
    this.controller.abort();
    if (this.state === "queued") this.set({ state: "cancelled" });
  }
}

/** Whether the service's answer leaves an unfinished multipart upload worth resuming. */
function resumable(error) {
  return !(error instanceof ApiError && [400, 401, 403, 404, 409].includes(error.status));
}

/**
 * The upload queue: checks each file, then runs a few transfers at a time. Fires "add" with a new
 * Transfer and "finish" when one ends (any outcome). `api` makes the /uploads calls; `unfinished`
 * (an UnfinishedUploads, set once someone signs in) remembers multipart uploads until they complete,
 * so that picking the same file again resumes one.
 */
export class Uploader extends EventTarget {
  constructor(api, limits, unfinished = null) {
    super();
    this.api = api;
    this.limits = limits;
    this.unfinished = unfinished;
    this.transfers = [];
    this.running = 0;
  }

  get busy() {
    return this.transfers.some((transfer) => transfer.active);
  }

  /** Queue files; one this browser began uploading before (same name, size and date) is resumed. */
  add(files) {
    const added = [];
    for (const file of files) {
      const entry = this.unfinished?.match(file);
      if (entry) {
        const resumed = this.resume(file, entry);
        if (resumed) added.push(resumed);
        continue;
      }
      const verdict = checkFile(file, this.limits);
      const transfer = new Transfer(file, verdict.contentType);
      if (!verdict.ok) transfer.state = "rejected";
      transfer.error = verdict.reason || "";
      this.#track(transfer);
      added.push(transfer);
    }
    this.#pump();
    return added;
  }

  /**
   * Continue the unfinished upload `entry` with `file`, the file it was started with: only the parts
   * storage lacks are sent. Null when that upload is under way already.
   */
  resume(file, entry) {
    const existing = this.transfers.find((item) => item.fileId === entry.fileId && !["cancelled", "done"].includes(item.state));
    if (existing?.active) return null;
    if (existing?.resumable) {
      existing.file = file;
      this.retry(existing);
      return existing;
    }
    if (existing) this.remove(existing);
    const transfer = new Transfer(file, entry.contentType || checkFile(file, this.limits).contentType);
    transfer.fileId = entry.fileId;
    transfer.multipart = { partSize: entry.partSize };
    transfer.resuming = true;
    transfer.resumed = true;
    this.#track(transfer);
    this.#pump();
    return transfer;
  }

  #track(transfer) {
    this.transfers.push(transfer);
    this.dispatchEvent(new CustomEvent("add", { detail: transfer }));
  }

  /** Forget a finished transfer (the row is dismissed or the server record took over). */
  remove(transfer) {
    transfer.cancel();
    this.transfers = this.transfers.filter((item) => item !== transfer);
  }

  /** Cancel every transfer and wait until the service has been told to drop the unfinished ones. */
  async cancelAll() {
    const runs = [];
    for (const transfer of [...this.transfers]) {
      if (transfer.active && transfer.running) runs.push(transfer.running);
      this.remove(transfer);
    }
    await Promise.allSettled(runs);
  }

  /** Run a failed transfer again: a resumable one sends only the parts storage lacks, others start over. */
  retry(transfer) {
    if (transfer.state !== "failed") return;
    transfer.controller = new AbortController();
    transfer.lastSample = null;
    const again = transfer.resumable
      ? { resuming: true, resumed: true }
      : { fileId: null, ticket: null, multipart: null, resuming: false };
    transfer.set({ ...again, state: "queued", loaded: 0, bytesPerSecond: 0, error: "", resumable: false, partsStored: 0 });
    this.#pump();
  }

  #pump() {
    while (this.running < FILE_CONCURRENCY) {
      const transfer = this.transfers.find((item) => item.state === "queued");
      if (!transfer) return;
      this.running += 1;
      transfer.set({ state: "starting" });
      transfer.running = this.#run(transfer).finally(() => {
        this.running -= 1;
        this.dispatchEvent(new CustomEvent("finish", { detail: transfer }));
        this.#pump();
      });
    }
  }

  /** Ask for an upload URL or plan; a multipart plan is remembered until the upload completes. */
  async #start(transfer) {
    const plan = await this.api.createUpload(transfer.name, transfer.size, transfer.contentType);
    transfer.set({ fileId: plan.fileId });
    if (!plan.uploadId) {
      transfer.ticket = plan;
      return;
    }
    transfer.multipart = { uploadId: plan.uploadId, partSize: plan.partSize, partCount: plan.partCount };
    const { file } = transfer;
    this.unfinished?.remember({
      fileId: plan.fileId,
      name: file.name,
      size: file.size,
      lastModified: file.lastModified,
      partSize: plan.partSize,
      contentType: transfer.contentType,
    });
  }

  /**
   * The parts storage holds for the upload being resumed. When there is nothing left to resume (it
   * expired, was aborted, or cannot be resumed) the transfer starts over as a new upload.
   */
  async #heldParts(transfer) {
    transfer.resuming = false;
    let progress;
    try {
      progress = await this.api.getUpload(transfer.fileId);
    } catch (error) {
      if (!(error instanceof ApiError) || ![404, 409].includes(error.status)) throw error;
      this.unfinished?.forget(transfer.fileId);
      if (error.code === "UploadFinished") throw new AlreadyUploaded();
      // Drops the record of an upload storage no longer holds; one already gone answers 404, which is fine.
      this.api.abortUpload(transfer.fileId).catch(() => {});
      transfer.set({ fileId: null, multipart: null, resumed: false });
      return new Map();
    }
    transfer.multipart = { uploadId: progress.uploadId, partSize: progress.partSize, partCount: progress.partCount };
    return new Map(progress.parts.map((part) => [part.partNumber, part]));
  }

  async #run(transfer) {
    const signal = transfer.controller.signal;
    const onBytes = (loaded) => transfer.progress(loaded);
    try {
      const held = transfer.resuming ? await this.#heldParts(transfer) : new Map();
      if (!transfer.fileId) await this.#start(transfer);
      if (signal.aborted) throw new UploadCancelled();
      if (transfer.multipart) {
        const stored = new Set(held.keys());
        transfer.partsStored = stored.size;
        const parts = await sendParts({
          file: transfer.file,
          partSize: transfer.multipart.partSize,
          held,
          signer: new PartSigner(this.api, transfer.fileId),
          signal,
          onBytes,
          onStored: (partNumber) => {
            stored.add(partNumber);
            transfer.partsStored = stored.size;
          },
        });
        transfer.set({ state: "completing" });
        await this.api.completeUpload(transfer.fileId, transfer.multipart.uploadId, parts);
        this.unfinished?.forget(transfer.fileId);
      } else {
        await postSinglePart(transfer.ticket, transfer.file, signal, onBytes);
      }
      transfer.set({ state: "done", loaded: transfer.size });
    } catch (error) {
      if (error instanceof AlreadyUploaded) {
        transfer.set({ state: "done", loaded: transfer.size });
        return;
      }
      if (error instanceof UploadCancelled || signal.aborted) {
        transfer.set({ state: "cancelled" });
        // Lets the service drop the half-made upload and its record now rather than at expiry.
        if (transfer.fileId) {
          this.unfinished?.forget(transfer.fileId);
          await this.api.abortUpload(transfer.fileId).catch(() => {});
        }
        return;
      }
      const message = (error.message || "Upload failed").replace(/[.\s]+$/, "");
      if (transfer.multipart && transfer.fileId && resumable(error)) {
        // Storage keeps the parts it has: Retry, or choosing the file again after a reload, sends the rest.
        const count = transfer.multipart.partCount || Math.ceil(transfer.size / transfer.multipart.partSize);
        const kept = `${transfer.partsStored} of ${count} parts are stored; Retry sends the rest.`;
        transfer.set({ state: "failed", resumable: true, error: `${message}. ${kept}` });
        return;
      }
      // A 400 from POST /uploads carries the service's own reason (type, size): the file is not acceptable.
      const refused = error.status === 400 && !transfer.fileId;
      transfer.set({ state: refused ? "rejected" : "failed", error: error.message || "Upload failed" });
      if (!refused && transfer.fileId) {
        this.unfinished?.forget(transfer.fileId);
        this.api.abortUpload(transfer.fileId).catch(() => {});
      }
    }
  }
}
