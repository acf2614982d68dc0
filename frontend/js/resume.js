// Unfinished multipart uploads this browser started, kept so a reload or a lost connection can resume them.

// Only what identifies the file and the upload is kept, never its contents: resuming needs the person
// to pick the same file again, recognised by name, size and last-modified time. Entries live in
// localStorage under the signed-in account, so another account on this browser never sees them.
const KEY_PREFIX = "filepipe.unfinished-uploads.";
// The ingest bucket aborts multipart uploads a day after they start (its lifecycle rule runs once a day,
// so up to two): past that nothing is left to resume.
const KEEP_MS = 2 * 24 * 60 * 60 * 1000;
const MAX_ENTRIES = 20;

/** Whether `file` is the file an entry was started with: same name, size and last-modified time. */
export function sameFile(entry, file) {
  return Boolean(entry && file) && entry.name === file.name && entry.size === file.size && entry.lastModified === file.lastModified;
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
    this.storage = storage;
    this.key = KEY_PREFIX + String(owner || "").toLowerCase();
  }

  /** Every entry still young enough to resume, newest first. */
  list(now = Date.now()) {
    let entries = [];
    try {
      const parsed = JSON.parse(this.storage?.getItem(this.key) || "[]");
      if (Array.isArray(parsed)) entries = parsed;
    } catch {
      entries = [];
    }
    return entries.filter((entry) => valid(entry) && now - entry.startedAt < KEEP_MS).sort((a, b) => b.startedAt - a.startedAt);
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
    this.#save([entry, ...this.list().filter((item) => item.fileId !== fileId)].slice(0, MAX_ENTRIES));
  }

  forget(fileId) {
    const entries = this.list();
    const kept = entries.filter((entry) => entry.fileId !== fileId);
    if (kept.length !== entries.length) this.#save(kept);
  }

  #save(entries) {
    try {
      if (entries.length) this.storage?.setItem(this.key, JSON.stringify(entries));
      else this.storage?.removeItem(this.key);
    } catch {
      // Storage full or switched off: uploads still work, they just cannot be resumed after a reload.
    }
  }
}
