// Unfinished multipart uploads this browser started, kept so a reload or a lost connection can resume them,
// and a request link guest's receipts, kept so a reload still shows their uploads and can resume them.

import { formatBytes, formatDateTime } from "./format.js";

// Only what identifies the file and the upload is kept, never its contents: resuming needs the person
// to pick the same file again, recognised by name, size and last-modified time. Entries live in
// localStorage under the signed-in account (or the request link), so no one else on this browser sees them.
const KEY_PREFIX = "filepipe.unfinished-uploads.";
const RECEIPTS_PREFIX = "filepipe.request-receipts.";
// The ingest bucket aborts multipart uploads a day after they start (its lifecycle rule runs once a day,
// so up to two): past that nothing is left to resume.
const KEEP_MS = 2 * 24 * 60 * 60 * 1000;
const MAX_ENTRIES = 20;

// A request link lives at most 30 days; its guest may follow their uploads for a while after it closes.
const RECEIPT_KEEP_MS = 45 * 24 * 60 * 60 * 1000;
// The newest are kept; the status route answers for 50 uploads at a time.
const MAX_RECEIPTS = 200;

/** Whether `file` is the file an entry was started with: same name, size and last-modified time. */
export function sameFile(entry, file) {
  return Boolean(entry && file) && entry.name === file.name && entry.size === file.size && entry.lastModified === file.lastModified;
}

/** What to tell someone who picked another file than the one an interrupted upload began with. */
export function wrongFileMessage(entry) {
  const wanted = `${entry.name} (${formatBytes(entry.size)}, last changed ${formatDateTime(new Date(entry.lastModified))})`;
  return `That is not the file this upload started with. Choose ${wanted}.`;
}

/** A hex SHA-256 of a request link's token: names its entries without keeping the token itself. */
export async function linkStorageKey(token) {
  if (!globalThis.crypto?.subtle) return null; // not a secure context: nothing is kept
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A JSON list in `storage` (or nowhere, when it is null) that reads as empty when it is unreadable. */
class StoredList {
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
  }

  read() {
    try {
      const parsed = JSON.parse(this.storage?.getItem(this.key) || "[]");
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }

  write(entries) {
    try {
      if (entries.length) this.storage?.setItem(this.key, JSON.stringify(entries));
      else this.storage?.removeItem(this.key);
    } catch {
      // Storage full or switched off: uploads still work, they just cannot be resumed after a reload.
    }
  }
}

function valid(entry) {
  return (
    entry &&
    typeof entry.fileId === "string" &&
    typeof entry.name === "string" &&
    Number.isSafeInteger(entry.size) &&
    Number.isFinite(entry.lastModified) &&
    Number.isSafeInteger(entry.partSize) &&
    entry.partSize > 0 &&
    Number.isFinite(entry.startedAt)
  );
}

/** This browser's localStorage, or null where the browser withholds it (a locked-down profile). */
export function browserStorage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

export class UnfinishedUploads {
  /** `storage` is localStorage (or a stand-in, or null: nothing kept); `owner` tells accounts apart. */
  constructor(storage, owner) {
    this.stored = new StoredList(storage, KEY_PREFIX + String(owner || "").toLowerCase());
  }

  /** Every entry still young enough to resume, newest first. */
  list(now = Date.now()) {
    return this.stored
      .read()
      .filter((entry) => valid(entry) && now - entry.startedAt < KEEP_MS)
      .sort((a, b) => b.startedAt - a.startedAt);
  }

  get(fileId) {
    return this.list().find((entry) => entry.fileId === fileId) || null;
  }

  /** The entry started with this very file, if any. */
  match(file) {
    return this.list().find((entry) => sameFile(entry, file)) || null;
  }

  remember({ fileId, name, size, lastModified, partSize, contentType }) {
    const entry = { fileId, name, size, lastModified, partSize, contentType, startedAt: Date.now() };
    this.stored.write([entry, ...this.list().filter((item) => item.fileId !== fileId)].slice(0, MAX_ENTRIES));
  }

  forget(fileId) {
    const entries = this.list();
    const kept = entries.filter((entry) => entry.fileId !== fileId);
    if (kept.length !== entries.length) this.stored.write(kept);
  }
}

/**
 * The receipts of the uploads a guest sent through one request link from this browser: what lets them
 * follow those uploads, and resume one, after a reload. Held in memory too, for browsers that keep nothing.
 */
export class GuestReceipts {
  /** `linkKey` from linkStorageKey(); null keeps receipts in this page only. */
  constructor(storage, linkKey) {
    this.stored = new StoredList(linkKey ? storage : null, RECEIPTS_PREFIX + linkKey);
    this.memory = new Map();
  }

  /** The uploads this browser sent through the link, oldest first, each {fileId, receipt, name, size}. */
  list(now = Date.now()) {
    return this.stored
      .read()
      .filter(
        (entry) =>
          entry &&
          typeof entry.fileId === "string" &&
          typeof entry.receipt === "string" &&
          typeof entry.name === "string" &&
          Number.isSafeInteger(entry.size) &&
          Number.isFinite(entry.savedAt) &&
          now - entry.savedAt < RECEIPT_KEEP_MS,
      )
      .sort((a, b) => a.savedAt - b.savedAt);
  }

  get(fileId) {
    return this.memory.get(fileId) || this.list().find((entry) => entry.fileId === fileId)?.receipt;
  }

  remember({ fileId, receipt, name, size }) {
    this.memory.set(fileId, receipt);
    const entry = { fileId, receipt, name, size, savedAt: Date.now() };
    this.stored.write([...this.list().filter((item) => item.fileId !== fileId), entry].slice(-MAX_RECEIPTS));
  }
}
