// The dead-letter queues: what waits in each, and replay (or a dry run of it) for all or for one file.

import { h, icon, setText } from "../dom.js";
import { announce, toast, withBusy } from "../ui.js";
import { PolledView } from "./poller.js";
import { formatMoment, prettyJson } from "./status.js";

const REFRESH_MS = 3000;

const ACTION_TEXT = {
  redrive: "Redrive",
  start: "Start again",
  "already done": "Already final",
  duplicate: "Duplicate",
  "in progress": "Still running",
  unreplayable: "Can't replay",
  error: "Error",
};

const ACTION_TONE = {
  redrive: "ok",
  start: "ok",
  "already done": "info",
  duplicate: "info",
  "in progress": "warn",
  unreplayable: "danger",
  error: "danger",
};

function actionLabel(outcome, dryRun) {
  const text = ACTION_TEXT[outcome.action] || outcome.action;
  const planned = dryRun && (outcome.action === "start" || outcome.action === "redrive");
  return planned ? `Would ${text.toLowerCase()}` : text;
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

/** One sentence for a replay's outcomes, as the operator reads it after pressing the button. */
export function replaySentence(result) {
  const outcomes = result.outcomes;
  if (!outcomes.length) return result.dryRun ? "Dry run: the dead-letter queues are empty." : "Nothing to replay: the dead-letter queues are empty.";
  const count = (...actions) => outcomes.filter((outcome) => actions.includes(outcome.action)).length;
  const started = count("start", "redrive");
  const handled = count("already done", "duplicate");
  const running = count("in progress");
  const attention = count("unreplayable", "error");
  const parts = [];
  if (started) parts.push(`${started} ${result.dryRun ? "would start" : "started"} again`);
  if (handled) parts.push(`${handled} already handled${result.dryRun ? " (would be removed)" : ""}`);
  if (running) parts.push(`${running} still running`);
  if (attention) parts.push(`${attention} ${attention === 1 ? "needs" : "need"} attention`);
  const kept = outcomes.filter((outcome) => !outcome.deleted).length;
  if (result.dryRun) return `Dry run of ${plural(outcomes.length, "message", "messages")}: ${parts.join(", ")}. Nothing was changed.`;
  return `Replayed ${plural(outcomes.length, "message", "messages")}: ${parts.join(", ")}; ${plural(kept, "message", "messages")} left in the queue.`;
}

export class DeadLettersView extends PolledView {
  constructor(api, navigate, onChange) {
    super(REFRESH_MS);
    this.api = api;
    this.navigate = navigate;
    this.onChange = onChange;
    this.signature = "";
    document.title = "Dead letters · filepipe console";
    this.el = this.build();
  }

  build() {
    this.headingEl = h("h1", { id: "dlq-heading", tabindex: "-1" }, "Dead-letter queues");
    this.countEl = h("span", { class: "count", "data-testid": "dlq-count" });
    this.replayButton = h("button", { type: "button", class: "btn btn-primary", "data-testid": "replay-all" }, icon("refresh"), h("span", { class: "btn-label" }, "Replay all"));
    this.dryRunButton = h("button", { type: "button", class: "btn", "data-testid": "replay-dry-run" }, h("span", { class: "btn-label" }, "Dry run"));
    this.replayButton.addEventListener("click", () => this.replay(this.replayButton, { dryRun: false }));
    this.dryRunButton.addEventListener("click", () => this.replay(this.dryRunButton, { dryRun: true }));
    this.errorEl = h("p", { class: "banner tone-danger", role: "alert", hidden: true });
    this.resultEl = h("section", { class: "panel replay-result", "aria-labelledby": "replay-result-heading", hidden: true, "data-testid": "replay-result" });
    this.queuesEl = h("div", { class: "queues" });
    this.updatedEl = h("p", { class: "refresh-note" });
    return h(
      "section",
      { class: "console-section", "aria-labelledby": "dlq-heading" },
      h("div", { class: "page-head" }, this.headingEl, this.countEl),
      h(
        "p",
        { class: "lead" },
        "Runs that failed after their retries, and uploads that never started, wait here. Replay starts each file again with its original input; a message is deleted only once its run is accepted, or when the file already reached a final status. Replaying twice is safe.",
      ),
      h("div", { class: "action-bar" }, this.replayButton, this.dryRunButton),
      this.errorEl,
      this.resultEl,
      this.queuesEl,
      this.updatedEl,
    );
  }

  async refresh() {
    const data = await this.readShown(() => this.api.deadLetters(), (error) => `Couldn't read the queues: ${error.message}`);
    setText(this.countEl, String(data.total));
    setText(this.updatedEl, `Updated ${formatMoment(new Date())}; refreshes every ${REFRESH_MS / 1000} s. Reading a queue here leaves its messages in place.`);
    const signature = JSON.stringify(data.queues.map((queue) => [queue.queue, queue.approximateCount, queue.messages.map((m) => m.messageId)]));
    if (signature === this.signature) return;
    this.signature = signature;
    // Rebuilding moves focus off a button that is gone; keep it on the same control when it remains.
    const focusKey = document.activeElement?.dataset?.focusKey;
    this.queuesEl.replaceChildren(...data.queues.map((queue) => this.renderQueue(queue)));
    if (focusKey) this.queuesEl.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  renderQueue(queue) {
    const headingId = `queue-${queue.queue}`;
    const shown = queue.messages.length;
    const more = queue.approximateCount > shown ? ` (showing ${shown})` : "";
    return h(
      "section",
      { class: "panel queue", "aria-labelledby": headingId, "data-queue": queue.queue, "data-testid": `queue-${queue.queue}` },
      h("div", { class: "panel-head" }, h("h2", { id: headingId }, queue.label), h("span", { class: "count" }, `${queue.approximateCount}${more}`)),
      shown
        ? h("ul", { class: "message-list" }, queue.messages.map((message) => this.renderMessage(message)))
        : h("p", { class: "queue-empty" }, icon("check"), "No messages."),
    );
  }

  renderMessage(message) {
    const file = message.fileId
      ? h("a", { href: `/console?file=${encodeURIComponent(message.fileId)}`, class: "mono" }, message.fileId)
      : h("span", { class: "muted" }, "unknown file");
    const execution = message.execution ? h("a", { href: `/console/executions/${encodeURIComponent(message.execution)}`, class: "mono" }, message.execution) : null;
    let replayOne = null;
    if (message.fileId && message.replayable) {
      replayOne = h(
        "button",
        { type: "button", class: "btn btn-small", "data-focus-key": `replay-${message.messageId}`, "data-testid": "replay-file", "aria-label": `Replay this file (${message.fileId})` },
        h("span", { class: "btn-label" }, "Replay this file"),
      );
      replayOne.addEventListener("click", () => this.replay(replayOne, { dryRun: false, file: message.fileId }));
    }
    return h(
      "li",
      { class: "message", "data-message-id": message.messageId, "data-file": message.fileId || "", "data-testid": "dlq-message" },
      h(
        "div",
        { class: "message-main" },
        h("p", { class: "message-title" }, h("span", { class: "message-label" }, "File "), file, execution ? h("span", { class: "message-label" }, " · run ") : null, execution),
        message.error ? h("p", { class: "message-error" }, icon("alert"), message.error) : null,
        message.problem ? h("p", { class: "message-error" }, icon("alert"), `Can't be replayed: ${message.problem}`) : null,
        message.sentAt ? h("p", { class: "message-meta" }, `Arrived ${formatMoment(message.sentAt)}`) : null,
        h("details", { class: "message-body" }, h("summary", {}, "Message body"), h("pre", { class: "code-block", tabindex: "0", "aria-label": "Message body" }, prettyJson(message.body))),
      ),
      replayOne ? h("div", { class: "message-actions" }, replayOne) : null,
    );
  }

  async replay(button, options) {
    await withBusy(button, options.dryRun ? "Checking…" : "Replaying…", async () => {
      let result;
      try {
        result = await this.api.replay(options);
      } catch (error) {
        toast(`Replay failed: ${error.message}`, "danger");
        return;
      }
      this.showResult(result, options);
      const sentence = replaySentence(result);
      announce(sentence);
      if (!options.dryRun) toast(sentence, result.outcomes.some((o) => o.action === "error" || o.action === "unreplayable") ? "warn" : "ok");
      await this.poller.now();
      this.onChange?.();
    });
  }

  showResult(result, options) {
    const rows = result.outcomes.map((outcome) =>
      h(
        "tr",
        { "data-action": outcome.action },
        h("td", {}, outcome.queue),
        h("td", { class: "mono" }, outcome.fileId || "–"),
        h("td", {}, h("span", { class: `badge tone-${ACTION_TONE[outcome.action] || "info"}` }, actionLabel(outcome, result.dryRun))),
        h("td", {}, outcome.execution ? h("a", { href: `/console/executions/${encodeURIComponent(outcome.execution)}`, class: "mono" }, outcome.execution) : "–"),
        h("td", {}, outcome.deleted ? "Deleted" : result.dryRun ? "Unchanged" : "Kept"),
        h("td", { class: "detail-cell" }, outcome.detail),
      ),
    );
    const scope = options.file ? ` for ${options.file}` : "";
    this.resultEl.hidden = false;
    this.resultEl.replaceChildren(
      h("div", { class: "panel-head" }, h("h2", { id: "replay-result-heading" }, `${result.dryRun ? "Dry run" : "Replay"}${scope}`), h("span", { class: "hint" }, formatMoment(new Date()))),
      h("p", { "data-testid": "replay-summary" }, replaySentence(result)),
      rows.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "data-table" },
              h("caption", { class: "visually-hidden" }, "What happened to each message"),
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["Queue", "File", "Action", "Execution", "Message", "Detail"].map((label) => h("th", { scope: "col" }, label)),
                ),
              ),
              h("tbody", {}, rows),
            ),
          )
        : null,
    );
  }
}
