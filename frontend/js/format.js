// How sizes, dates, durations, content types and statuses read on the page.

const UNITS = ["bytes", "KB", "MB", "GB", "TB"];

/** 1536 -> "1.5 KB"; binary multiples, labelled the way people read them in file managers. */
export function formatBytes(bytes) {
  const value = Number(bytes);
  if (!Number.isFinite(value) || value < 0) return "";
  if (value < 1024) return value === 1 ? "1 byte" : `${value} bytes`;
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < UNITS.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  const digits = scaled < 10 ? 1 : 0;
  return `${trimZero(scaled.toFixed(digits))} ${UNITS[unit]}`;
}

function trimZero(text) {
  return text.endsWith(".0") ? text.slice(0, -2) : text;
}

/** "12 345 678 bytes" with the locale's grouping, for the details view. */
export function formatExactBytes(bytes) {
  const value = Number(bytes);
  if (!Number.isFinite(value)) return "";
  return `${value.toLocaleString()} ${value === 1 ? "byte" : "bytes"}`;
}

/** A Date from ISO text, epoch seconds or epoch milliseconds; null when it is none of them. */
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  if (value instanceof Date) return value;
  if (typeof value === "number" || /^\d+(\.\d+)?$/.test(String(value))) {
    const number = Number(value);
    // Ten-digit numbers are seconds (until the year 2286), longer ones milliseconds.
    return new Date(number < 1e11 ? number * 1000 : number);
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

export function formatDateTime(value) {
  const date = toDate(value);
  return date ? dateTime.format(date) : "";
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const STEPS = [
  ["second", 60],
  ["minute", 60],
  ["hour", 24],
  ["day", 30],
  ["month", 12],
  ["year", Infinity],
];

/** "3 minutes ago", "in 7 days". */
export function formatRelative(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return "";
  let amount = (date.getTime() - now) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(amount) < size) {
      if (unit === "second" && Math.abs(amount) < 45) return amount < 0 ? "just now" : "in a moment";
      return relative.format(Math.round(amount), unit);
    }
    amount /= size;
  }
  return dateOnly.format(date);
}

/** 75 -> "1 min 15 s" for time-left estimates. */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${total % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const TYPE_NAMES = {
  "image/jpeg": "JPEG image",
  "image/png": "PNG image",
  "image/gif": "GIF image",
  "image/webp": "WebP image",
  "image/heic": "HEIC image",
  "image/svg+xml": "SVG image",
  "application/pdf": "PDF document",
  "text/plain": "Text file",
  "text/csv": "CSV spreadsheet",
  "application/zip": "ZIP archive",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel spreadsheet",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint presentation",
  "video/mp4": "MP4 video",
  "audio/mpeg": "MP3 audio",
};

/** "application/pdf" -> "PDF document"; unknown types read as their MIME name. */
export function typeName(contentType) {
  if (!contentType) return "Unknown type";
  return TYPE_NAMES[contentType.toLowerCase()] || contentType;
}

/** Which sprite icon stands for a content type. */
export function typeIcon(contentType) {
  const type = (contentType || "").toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  if (type === "application/zip") return "archive";
  if (type.startsWith("text/") || type === "application/pdf" || type.includes("officedocument")) return "doc";
  return "file";
}

/**
 * What each server status means to a person. `tone` picks the badge colour; `pending` statuses keep the
 * page polling; `final` ones never change again.
 */
export const STATUS = {
  UPLOADING: { label: "Uploading", tone: "info", pending: true, hint: "Waiting for the upload to finish" },
  PROCESSING: { label: "Processing", tone: "info", pending: true, hint: "Checking type, scanning for malware, making previews" },
  READY: { label: "Ready", tone: "ok", pending: false, hint: "" },
  REJECTED: { label: "Rejected", tone: "warn", pending: false, hint: "This file was not accepted" },
  QUARANTINED: {
    label: "Quarantined",
    tone: "danger",
    pending: false,
    hint: "Malware was found. The file is isolated and can't be downloaded or shared.",
  },
  FAILED: {
    label: "Failed",
    tone: "danger",
    pending: false,
    hint: "Processing failed. It is kept safe and can be retried by an operator.",
  },
};

export function statusInfo(status) {
  return STATUS[status] || { label: status ? String(status) : "Unknown", tone: "info", pending: false, hint: "" };
}
