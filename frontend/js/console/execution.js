// One execution: its facts, the workflow drawn with each state's outcome, every state entry, and the
// input, output and error of the state the operator picks.

import { h, icon, setText } from "../dom.js";
import { announce } from "../ui.js";
import { layoutDefinition } from "./graph.js";
import { renderGraph, stateOutcomes, textMeasurer } from "./graphview.js";
import { PolledView } from "./poller.js";
import {
  OUTCOMES,
  executionInfo,
  executionSeconds,
  formatMoment,
  formatSeconds,
  outcomeBadge,
  parseTime,
  prettyJson,
  statusBadge,
} from "./status.js";

const REFRESH_MS = 1500;
const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);

let cachedLayout = null;

function layoutFor(definition) {
  if (!cachedLayout || cachedLayout.definition !== definition) {
    cachedLayout = { definition, layout: layoutDefinition(definition, textMeasurer()) };
  }
  return cachedLayout.layout;
}

/** Every state's definition by name, nested branches included. */
function definitionsByName(definition, into = new Map()) {
  for (const [name, state] of Object.entries(definition.States || {})) {
    into.set(name, state);
    for (const branch of state.Branches || []) definitionsByName(branch, into);
    const processor = state.ItemProcessor || state.Iterator;
    if (processor) definitionsByName(processor, into);
  }
  return into;
}

function codeBlock(text, label) {
  // Focusable, so a keyboard can scroll a long payload.
  return h("pre", { class: "code-block", tabindex: "0", "aria-label": label }, text);
}

function fact(term, ...value) {
  return h("div", { class: "details-item" }, h("dt", {}, term), h("dd", {}, ...value));
}

function wideFact(term, ...value) {
  const item = fact(term, ...value);
  item.classList.add("is-wide");
  return item;
}

export class ExecutionView extends PolledView {
  constructor(api, navigate, name) {
    super(REFRESH_MS);
    this.api = api;
    this.navigate = navigate;
    this.name = name;
    this.selected = null;
    this.signature = "";
    document.title = `${name} · Executions · filepipe console`;
    this.el = this.build();
  }

  build() {
    this.headingEl = h("h1", { id: "execution-heading", tabindex: "-1", class: "execution-title" }, h("span", { class: "mono" }, this.name));
    this.badgeSlot = h("span", { class: "badge-slot" });
    this.summaryEl = h("dl", { class: "details-list execution-facts" });
    this.errorBanner = h("div", { class: "banner tone-danger execution-error", role: "note", hidden: true });
    this.runsEl = h("nav", { class: "runs", "aria-label": "Runs of this file", hidden: true });
    this.loadError = h("p", { class: "banner tone-danger", role: "alert", hidden: true });
    this.graphHost = h("div", { class: "graph-scroll", "data-testid": "graph-host" }, h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Loading the workflow…"));
    this.statePanel = h("section", { class: "state-panel panel", "aria-labelledby": "state-heading", "data-testid": "state-panel" });
    this.statesBody = h("tbody");
    this.ioEl = h("div", { class: "execution-io" });
    const legend = h(
      "ul",
      { class: "graph-legend", "aria-label": "Legend" },
      ["ok", "caught", "failed", "stopped", "running", "none"].map((key) =>
        h("li", { class: `legend-item outcome-${key}` }, h("span", { class: "legend-swatch", "aria-hidden": "true" }, OUTCOMES[key].glyph), OUTCOMES[key].label),
      ),
      h("li", { class: "legend-item legend-catch" }, h("span", { class: "legend-line", "aria-hidden": "true" }), "Catch path"),
      h("li", { class: "legend-item legend-taken" }, h("span", { class: "legend-line", "aria-hidden": "true" }), "Path taken"),
    );
    return h(
      "article",
      { class: "console-section execution-view", "aria-labelledby": "execution-heading" },
      h("p", { class: "back-link" }, h("a", { href: "/console" }, h("span", { "aria-hidden": "true" }, "← "), "All executions")),
      h("div", { class: "page-head execution-head" }, this.headingEl, this.badgeSlot),
      this.loadError,
      this.summaryEl,
      this.errorBanner,
      this.runsEl,
      h(
        "div",
        { class: "execution-layout" },
        h(
          "section",
          { class: "graph-panel panel", "aria-labelledby": "graph-heading" },
          h("div", { class: "panel-head" }, h("h2", { id: "graph-heading" }, "Workflow"), h("p", { class: "hint" }, "Choose a state to see its input, output and error.")),
          legend,
          this.graphHost,
        ),
        this.statePanel,
      ),
      h(
        "section",
        { class: "panel states-panel", "aria-labelledby": "states-heading" },
        h("div", { class: "panel-head" }, h("h2", { id: "states-heading" }, "States entered")),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "data-table", "data-testid": "states-table" },
            h("caption", { class: "visually-hidden" }, "Every state this run entered, in order"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col", class: "num" }, "#"),
                h("th", { scope: "col" }, "State"),
                h("th", { scope: "col" }, "Type"),
                h("th", { scope: "col" }, "Outcome"),
                h("th", { scope: "col", class: "num" }, "Duration"),
                h("th", { scope: "col", class: "num" }, "Retries"),
                h("th", { scope: "col" }, "Error"),
              ),
            ),
            this.statesBody,
          ),
        ),
      ),
      this.ioEl,
    );
  }

  async refresh() {
    let definition;
    let execution;
    try {
      [definition, execution] = await this.readShown(
        async () => {
          const found = await this.api.execution(this.name);
          return [await this.api.definition(found.workflow), found];
        },
        (error) => (error.status === 404 ? `There is no execution named ${this.name}.` : `Couldn't load this execution: ${error.message}`),
        this.loadError,
      );
    } catch (error) {
      if (error.status === 404) this.poller.stop();
      throw error;
    }
    this.definition = definition.definition;
    this.execution = execution;
    const signature = JSON.stringify([execution.status, execution.states.length, execution.states.map((s) => s.status), execution.runs.length]);
    if (signature !== this.signature) {
      this.signature = signature;
      this.render();
    } else {
      const duration = this.summaryEl.querySelector("[data-testid=execution-duration]");
      if (duration) setText(duration, formatSeconds(executionSeconds(execution)));
    }
    if (FINAL.has(execution.status)) this.poller.stop();
  }

  /** The state to show first: the first that failed or caught an error, else the last one entered. */
  defaultSelection() {
    const states = this.execution.states;
    const troubled = states.find((state) => state.status === "failed" || state.status === "caught");
    return (troubled || states[states.length - 1] || {}).name || this.definition.StartAt;
  }

  render() {
    this.renderFacts();
    this.renderRuns();
    this.renderGraph();
    this.renderStates();
    if (!this.selected) this.selected = this.defaultSelection();
    this.select(this.selected, false);
    this.renderIo();
  }

  renderFacts() {
    const execution = this.execution;
    this.badgeSlot.replaceChildren(statusBadge(execution.status));
    const started = parseTime(execution.startDate);
    this.summaryEl.replaceChildren(
      execution.workflow === "RescanFiles"
        ? wideFact("Workflow", h("span", { "data-testid": "execution-workflow" }, "Rescan of stored files (RescanFiles)"))
        : wideFact("File", h("a", { href: `/console?file=${encodeURIComponent(execution.fileId)}`, class: "mono" }, execution.fileId)),
      fact("Started", h("time", { datetime: started?.toISOString() || "" }, formatMoment(execution.startDate))),
      fact("Stopped", execution.stopDate ? formatMoment(execution.stopDate) : "–"),
      fact("Duration", h("span", { "data-testid": "execution-duration" }, formatSeconds(executionSeconds(execution)))),
      fact("States entered", String(execution.states.length)),
    );
    if (execution.error) {
      this.errorBanner.hidden = false;
      this.errorBanner.replaceChildren(icon("alert"), h("p", {}, h("strong", {}, `${executionInfo(execution.status).label}: `), execution.error));
    } else {
      this.errorBanner.hidden = true;
    }
  }

  renderRuns() {
    const runs = this.execution.runs || [];
    this.runsEl.hidden = runs.length < 2;
    if (runs.length < 2) return;
    this.runsEl.replaceChildren(
      h("h2", { class: "runs-title" }, "Runs of this file"),
      h(
        "ul",
        { class: "runs-list" },
        runs.map((run) =>
          h(
            "li",
            {},
            h(
              "a",
              { href: `/console/executions/${encodeURIComponent(run.name)}`, "aria-current": run.name === this.execution.name ? "page" : null, class: "run-link" },
              h("span", { class: "mono" }, run.name),
              statusBadge(run.status),
            ),
          ),
        ),
      ),
    );
  }

  renderGraph() {
    const layout = layoutFor(this.definition);
    const focused = document.activeElement?.closest?.("[data-state]")?.dataset.state;
    this.graph = renderGraph(layout, {
      title: `The ProcessUpload workflow, coloured by how each state ended in ${this.name}`,
      states: this.execution.states,
      executionStatus: this.execution.status,
      onSelect: (name) => this.select(name, true),
    });
    this.graphHost.replaceChildren(this.graph);
    if (focused) this.graph.focusState(focused);
  }

  renderStates() {
    const rows = this.execution.states.map((state, index) => {
      const button = h("button", { type: "button", class: "link-button state-link", "data-state": state.name }, state.name);
      button.addEventListener("click", () => {
        this.select(state.name, true);
        this.statePanel.querySelector("h2")?.focus();
      });
      return h(
        "tr",
        { "data-state": state.name, "data-outcome": state.status },
        h("td", { class: "num" }, String(index + 1)),
        h("td", {}, button),
        h("td", {}, state.type),
        h("td", {}, outcomeBadge(state.status)),
        h("td", { class: "num" }, formatSeconds(state.durationSeconds)),
        h("td", { class: "num" }, String(state.retries)),
        h("td", { class: "error-cell" }, state.errorSummary || ""),
      );
    });
    this.statesBody.replaceChildren(...rows);
  }

  renderIo() {
    const execution = this.execution;
    const blocks = [h("details", { class: "panel io-details" }, h("summary", {}, "Execution input"), codeBlock(prettyJson(execution.input), "Execution input"))];
    if (execution.output) {
      blocks.push(h("details", { class: "panel io-details" }, h("summary", {}, "Execution output"), codeBlock(prettyJson(execution.output), "Execution output")));
    }
    this.ioEl.replaceChildren(...blocks);
  }

  select(name, announceIt) {
    this.selected = name;
    this.graph?.select(name);
    for (const row of this.statesBody.querySelectorAll("tr")) row.classList.toggle("is-selected", row.dataset.state === name);
    const entries = this.execution.states.filter((state) => state.name === name);
    const definition = definitionsByName(this.definition).get(name) || {};
    const summary = stateOutcomes(entries).get(name);
    const outcome = summary ? summary.outcome : OUTCOMES.none;
    const heading = h("h2", { id: "state-heading", tabindex: "-1" }, name);
    const parts = [
      h("div", { class: "panel-head state-head" }, heading, outcomeBadge(outcome.key)),
      h("p", { class: "hint" }, `${definition.Type || "State"} state${entries.length > 1 ? `, entered ${entries.length} times` : ""}`),
    ];
    if (!entries.length) {
      parts.push(h("p", { class: "state-empty" }, "Not reached in this run."));
    }
    entries.forEach((entry, index) => {
      const block = h(
        "section",
        { class: "state-entry", "aria-label": entries.length > 1 ? `Entry ${index + 1} of ${entries.length}` : "This run" },
        entries.length > 1 ? h("h3", {}, `Entry ${index + 1} of ${entries.length}`) : null,
        h(
          "dl",
          { class: "details-list compact" },
          fact("Outcome", outcomeBadge(entry.status)),
          fact("Entered", formatMoment(entry.enteredAt)),
          fact("Duration", formatSeconds(entry.durationSeconds)),
          fact("Retries", String(entry.retries)),
        ),
        entry.error
          ? h(
              "div",
              { class: "banner tone-danger state-error", "data-testid": "state-error" },
              icon("alert"),
              h("div", {}, h("p", {}, h("strong", {}, entry.errorSummary || entry.error)), entry.cause ? h("details", {}, h("summary", {}, "Full cause"), codeBlock(prettyJson(entry.cause), `Cause of the error in ${name}`)) : null),
            )
          : null,
        h("h3", { class: "io-title" }, "Input"),
        entry.input !== null && entry.input !== undefined ? codeBlock(prettyJson(entry.input), `Input of ${name}`) : h("p", { class: "hint" }, "None recorded."),
        h("h3", { class: "io-title" }, "Output"),
        entry.output !== null && entry.output !== undefined
          ? codeBlock(prettyJson(entry.output), `Output of ${name}`)
          : h("p", { class: "hint" }, entry.status === "running" ? "Still running." : "No output: the state did not finish normally."),
      );
      parts.push(block);
    });
    parts.push(h("details", { class: "state-definition" }, h("summary", {}, "Definition"), codeBlock(JSON.stringify(definition, null, 2), `Definition of ${name}`)));
    this.statePanel.replaceChildren(...parts);
    if (announceIt) announce(`${name}: ${outcome.label}`);
  }
}
