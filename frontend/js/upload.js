// Sends files straight to storage: a presigned POST for small files, parallel presigned part PUTs for large ones.

import { checkFile } from "./limits.js";

const PART_CONCURRENCY = 4;
const PART_ATTEMPTS = 3;
const FILE_CONCURRENCY = 3;
const PROGRESS_SAMPLE_MS = 250;

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
function send({ method, url, body, signal, onProgress }) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new UploadCancelled());
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
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

/**
 * Multipart: PUT each planned part, a few at once, retrying transient failures; returns the parts with
 * their ETags in order, ready for the complete call. The first part that keeps failing stops the rest.
 */
export async function putParts(plan, file, signal, onBytes) {
  const partSize = Number(plan.partSize);
  const parts = [...plan.parts].sort((a, b) => a.partNumber - b.partNumber);
  const sent = new Map();
  const report = () => onBytes([...sent.values()].reduce((sum, bytes) => sum + bytes, 0));
  const stop = new AbortController();
  const abortAll = () => stop.abort();
  signal.addEventListener("abort", abortAll, { once: true });
  const results = [];
  let next = 0;

  const putOne = async (part) => {
    const start = (part.partNumber - 1) * partSize;
    const blob = file.slice(start, Math.min(start + partSize, file.size));
    for (let attempt = 1; ; attempt += 1) {
      try {
        const xhr = await send({
          method: "PUT",
          url: part.url,
          body: blob,
          signal: stop.signal,
          onProgress: (loaded) => {
            sent.set(part.partNumber, loaded);
            report();
          },
        });
        if (xhr.status < 200 || xhr.status >= 300) throw failure(xhr);
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new TransferError("Storage did not return the part's ETag (check the bucket's CORS ExposeHeaders)");
        sent.set(part.partNumber, blob.size);
        report();
        return { partNumber: part.partNumber, etag };
      } catch (error) {
        sent.set(part.partNumber, 0);
        report();
        if (!(error instanceof TransferError) || !error.retryable || attempt >= PART_ATTEMPTS) throw error;
        await wait(500 * 2 ** attempt, stop.signal);
      }
    }
  };

  const worker = async () => {
    while (next < parts.length) {
      const part = parts[next];
      next += 1;
      results.push(await putOne(part));
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, parts.length) }, worker));
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
 * (refused before sending), failed, cancelled. Fires "change" on every visible change.
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

/**
 * The upload queue: checks each file, then runs a few transfers at a time. Fires "add" with a new
 * Transfer and "finish" when one ends (any outcome). `api` makes the /uploads calls.
 */
export class Uploader extends EventTarget {
  constructor(api, limits) {
    super();
    this.api = api;
    this.limits = limits;
    this.transfers = [];
    this.running = 0;
  }

  get busy() {
    return this.transfers.some((transfer) => transfer.active);
  }

  add(files) {
    const added = [];
    for (const file of files) {
      const verdict = checkFile(file, this.limits);
      const transfer = new Transfer(file, verdict.contentType);
      if (!verdict.ok) transfer.state = "rejected";
      transfer.error = verdict.reason || "";
      this.transfers.push(transfer);
      added.push(transfer);
      this.dispatchEvent(new CustomEvent("add", { detail: transfer }));
    }
    this.#pump();
    return added;
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

  retry(transfer) {
    if (transfer.state !== "failed") return;
    transfer.controller = new AbortController();
    transfer.lastSample = null;
    transfer.set({ state: "queued", loaded: 0, bytesPerSecond: 0, error: "", fileId: null });
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

  async #run(transfer) {
    const signal = transfer.controller.signal;
    const onBytes = (loaded) => transfer.progress(loaded);
    try {
      const plan = await this.api.createUpload(transfer.name, transfer.size, transfer.contentType);
      transfer.set({ fileId: plan.fileId });
      if (signal.aborted) throw new UploadCancelled();
      if (plan.uploadId && Array.isArray(plan.parts)) {
        const parts = await putParts(plan, transfer.file, signal, onBytes);
        transfer.set({ state: "completing" });
        await this.api.completeUpload(plan.fileId, plan.uploadId, parts);
      } else {
        await postSinglePart(plan, transfer.file, signal, onBytes);
      }
      transfer.set({ state: "done", loaded: transfer.size });
    } catch (error) {
      if (error instanceof UploadCancelled || signal.aborted) {
        transfer.set({ state: "cancelled" });
        // Lets the service drop the half-made upload and its record now rather than at expiry.
        if (transfer.fileId) await this.api.abortUpload(transfer.fileId).catch(() => {});
        return;
      }
      // A 400 from POST /uploads carries the service's own reason (type, size): the file is not acceptable.
      const refused = error.status === 400 && !transfer.fileId;
      transfer.set({ state: refused ? "rejected" : "failed", error: error.message || "Upload failed" });
      if (!refused && transfer.fileId) this.api.abortUpload(transfer.fileId).catch(() => {});
    }
  }
}
