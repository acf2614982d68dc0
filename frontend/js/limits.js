// Checks a file against the service's limits before any byte is sent.

import { formatBytes, typeName } from "./format.js";

// Browsers leave File.type empty for some types (HEIC on most systems) and report others under legacy
// names (CSV as application/vnd.ms-excel on Windows); the extension fills the gap. The service sniffs
// the bytes anyway, so this only decides what to ask for.
const EXTENSION_TYPES = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heic",
  pdf: "application/pdf",
  txt: "text/plain",
  csv: "text/csv",
  zip: "application/zip",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  mp4: "video/mp4",
  mp3: "audio/mpeg",
};

function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/** The content type to declare for a file: its own when allowed, else the one its extension implies. */
export function contentTypeOf(file, allowedTypes) {
  const declared = (file.type || "").toLowerCase();
  const fromExtension = EXTENSION_TYPES[extensionOf(file.name)];
  const allowed = (type) => Boolean(type) && (!allowedTypes || allowedTypes.includes(type));
  if (allowed(declared)) return declared;
  if (allowed(fromExtension)) return fromExtension;
  return declared || fromExtension || "application/octet-stream";
}

// Word for word the API's own answers to POST /uploads, so a file reads the same whichever side refuses it.
export function tooLargeMessage(size, maxFileBytes) {
  return `the file is ${size} bytes; the limit is ${maxFileBytes}`;
}

export function typeNotAllowedMessage(contentType, allowedTypes) {
  return `'${contentType}' is not an accepted type (accepted: ${[...allowedTypes].sort().join(", ")})`;
}

/**
 * `{ok: true, contentType}` or `{ok: false, reason}`. Without limits in config.json only the obvious
 * (an empty file) is refused here and the API's answer decides the rest.
 */
export function checkFile(file, limits) {
  const contentType = contentTypeOf(file, limits.allowedTypes);
  if (file.size === 0) return { ok: false, contentType, reason: "File is empty" };
  if (limits.maxFileBytes && file.size > limits.maxFileBytes) {
    return { ok: false, contentType, reason: tooLargeMessage(file.size, limits.maxFileBytes) };
  }
  if (limits.allowedTypes && !limits.allowedTypes.includes(contentType)) {
    return { ok: false, contentType, reason: typeNotAllowedMessage(contentType, limits.allowedTypes) };
  }
  return { ok: true, contentType };
}

/** "Up to 1 GB each · JPEG, PNG, PDF…" for the drop zone, or "" when the limits are unknown. */
export function describeLimits(limits) {
  const parts = [];
  if (limits.maxFileBytes) parts.push(`Up to ${formatBytes(limits.maxFileBytes)} each`);
  if (limits.allowedTypes) {
    const names = limits.allowedTypes.map((type) => {
      const extension = Object.keys(EXTENSION_TYPES).find((ext) => EXTENSION_TYPES[ext] === type);
      return extension ? extension.toUpperCase() : typeName(type);
    });
    parts.push([...new Set(names)].join(", "));
  }
  return parts.join(" · ");
}

/** The accept attribute for the file picker, so the dialog offers only files the service takes. */
export function acceptAttribute(limits) {
  if (!limits.allowedTypes) return null;
  const extensions = Object.keys(EXTENSION_TYPES)
    .filter((ext) => limits.allowedTypes.includes(EXTENSION_TYPES[ext]))
    .map((ext) => `.${ext}`);
  return [...limits.allowedTypes, ...extensions].join(",");
}
