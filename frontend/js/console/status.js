// How execution statuses, state outcomes, times and durations read in the operator console.

import { h } from "../dom.js";

export const EXECUTION_STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"];

const EXECUTION = {
  RUNNING: { label: "Running", tone: "info", busy: true },
  SUCCEEDED: { label: "Succeeded", tone: "ok" },
  FAILED: { label: "Failed", tone: "danger" },
  TIMED_OUT: { label: "Timed out", tone: "danger" },
  ABORTED: { label: "Aborted", tone: "warn" },
  PENDING_REDRIVE: { label: "Pending redrive", tone: "warn", busy: true },
};

export function executionInfo(status) {
  return EXECUTION[status] || { label: status ? String(status) : "Unknown", tone: "info" };
}

/** A status badge: colour and a dot, and always the word, so colour is never the only signal. */
export function statusBadge(status) {
  const info = executionInfo(status);
  return h("span", { class: `badge tone-${info.tone}${info.busy ? " is-busy" : ""}`, "data-status": status, "data-testid": "status-badge" }, info.label);
}

/** What a state's entry ended as, from the operator commands' vocabulary (ok, caught, failed, …). */
export const OUTCOMES = {
  ok: { key: "ok", label: "Succeeded", short: "succeeded", glyph: "✓", tone: "ok" },
  caught: { key: "caught", label: "Error caught", short: "caught", glyph: "↷", tone: "warn" },
  failed: { key: "failed", label: "Failed", short: "failed", glyph: "✕", tone: "danger" },
  stopped: { key: "stopped", label: "Stopped when the run ended", short: "stopped", glyph: "■", tone: "danger" },
  running: { key: "running", label: "Running", short: "running", glyph: "●", tone: "info" },
  none: { key: "none", label: "Not reached", short: "not reached", glyph: "○", tone: "info" },
};

export function outcomeOf(status) {
  return OUTCOMES[status] || OUTCOMES.none;
}

export function outcomeBadge(status) {
  const outcome = outcomeOf(status);
  return h("span", { class: `badge tone-${outcome.tone} outcome-badge-${outcome.key}`, "data-outcome": outcome.key }, outcome.label);
}

/** The operator commands write times as "2024-05-01 12:00:00.123Z"; Date wants a T in the middle. */
export function parseTime(text) {
  if (!text) return null;
  const date = new Date(String(text).replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? null : date;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

/** "14:03:27" today, "12 May 2025, 14:03:27" on other days. */
export function formatMoment(value) {
  const date = value instanceof Date ? value : parseTime(value) || (typeof value === "number" ? new Date(value) : null);
  if (!date) return "–";
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay ? clock.format(date) : `${day.format(date)}, ${clock.format(date)}`;
}

/** "412 ms", "2.35 s", "3 m 05 s", "1 h 02 m"; a dash when unknown. */
export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "–";
  const value = Number(seconds);
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 60) return `${value.toFixed(2)} s`;
  const total = Math.round(value);
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} m ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

/** An execution's duration, counting up while it runs. */
export function executionSeconds(execution, now = Date.now()) {
  if (execution.durationSeconds !== null && execution.durationSeconds !== undefined) return execution.durationSeconds;
  const started = parseTime(execution.startDate);
  return started ? Math.max(0, (now - started.getTime()) / 1000) : null;
}

/** JSON text pretty-printed; anything that is not JSON comes back as it was. */
export function prettyJson(text) {
  if (text === null || text === undefined) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}
