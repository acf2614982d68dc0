// The executions list: newest first, filtered by status and file, refreshed while it is on screen.

import { h, icon, setText } from "../dom.js";
import { PolledView } from "./poller.js";
import { EXECUTION_STATUSES, executionInfo, executionSeconds, formatMoment, formatSeconds, parseTime, statusBadge } from "./status.js";

const REFRESH_MS = 2000;

/** An upload's run links to the runs of its file; a rescan covers many files, so it says what it is instead. */
function fileCell(item) {
  if (item.workflow === "RescanFiles") {
    return h("span", { class: "badge tone-info", "data-testid": "workflow-label", title: "A rescan of stored files (RescanFiles)" }, "Rescan");
  }
  return h("a", { href: `/console?file=${encodeURIComponent(item.fileId)}`, class: "mono muted-link", title: `Only the runs of ${item.fileId}` }, item.fileId);
}

export class ExecutionsView extends PolledView {
  constructor(api, navigate) {
    super(REFRESH_MS);
    this.api = api;
    this.navigate = navigate;
    const params = new URLSearchParams(window.location.search);
    this.filters = { status: (params.get("status") || "").toUpperCase(), file: params.get("file") || "" };
    this.rows = new Map();
    document.title = "Executions · filepipe console";
    this.el = this.build();
  }

  build() {
    this.headingEl = h("h1", { id: "executions-heading", tabindex: "-1" }, "Executions");
    this.countEl = h("span", { class: "count", "data-testid": "executions-count" });
    this.statusSelect = h(
      "select",
      { id: "filter-status", name: "status", "data-testid": "filter-status" },
      h("option", { value: "" }, "All statuses"),
      EXECUTION_STATUSES.map((status) => h("option", { value: status, selected: status === this.filters.status }, executionInfo(status).label)),
    );
    this.fileInput = h("input", {
      id: "filter-file",
      name: "file",
      type: "text",
      value: this.filters.file,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "e.g. 01J…",
      "data-testid": "filter-file",
    });
    const clear = h("button", { type: "button", class: "btn btn-small btn-ghost" }, "Clear");
    const form = h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter executions" },
      h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), this.statusSelect),
      h("div", { class: "field field-grow" }, h("label", { for: "filter-file" }, "File id"), this.fileInput),
      h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "btn btn-small" }, "Filter"), clear),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    this.statusSelect.addEventListener("change", () => this.apply());
    clear.addEventListener("click", () => {
      this.statusSelect.value = "";
      this.fileInput.value = "";
      this.apply();
      this.statusSelect.focus();
    });
    this.updatedEl = h("p", { class: "refresh-note" });
    this.errorEl = h("p", { class: "banner tone-danger", role: "alert", hidden: true });
    this.tbody = h("tbody");
    this.table = h(
      "table",
      { class: "data-table", "data-testid": "executions-table" },
      h("caption", { class: "visually-hidden" }, "Executions, newest first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Execution"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "File"),
          h("th", { scope: "col" }, "Started"),
          h("th", { scope: "col", class: "num" }, "Duration"),
        ),
      ),
      this.tbody,
    );
    this.emptyEl = h("div", { class: "empty", hidden: true }, icon("info", "icon icon-hero"), h("p", { class: "empty-title" }, "No executions"), h("p", {}, "Upload a file in the app and its run shows up here."));
    return h(
      "section",
      { class: "console-section", "aria-labelledby": "executions-heading" },
      h("div", { class: "page-head" }, this.headingEl, this.countEl),
      form,
      this.errorEl,
      h("div", { class: "table-wrap panel" }, this.table, this.emptyEl),
      this.updatedEl,
    );
  }

  apply() {
    this.filters = { status: this.statusSelect.value, file: this.fileInput.value.trim() };
    const params = new URLSearchParams();
    if (this.filters.status) params.set("status", this.filters.status);
    if (this.filters.file) params.set("file", this.filters.file);
    const search = params.toString();
    window.history.replaceState(null, "", `/console${search ? `?${search}` : ""}`);
    this.poller.now();
  }

  async refresh() {
    const filters = { ...this.filters };
    const data = await this.readShown(
      () => this.api.executions({ status: filters.status, file: filters.file }),
      (error) => `Couldn't load the executions: ${error.message}`,
    );
    if (filters.status !== this.filters.status || filters.file !== this.filters.file) return;
    this.render(data);
  }

  render(data) {
    const filtered = Boolean(this.filters.status || this.filters.file);
    setText(this.countEl, data.total > data.items.length ? `${data.items.length} of ${data.total}` : String(data.total));
    this.emptyEl.hidden = data.items.length > 0;
    this.table.hidden = data.items.length === 0;
    if (!data.items.length) {
      setText(this.emptyEl.querySelector(".empty-title"), filtered ? "No executions match" : "No executions");
    }
    const seen = new Set();
    let previous = null;
    for (const item of data.items) {
      seen.add(item.name);
      let row = this.rows.get(item.name);
      if (!row) {
        row = this.makeRow(item);
        this.rows.set(item.name, row);
      }
      this.fillRow(row, item);
      const expected = previous ? previous.nextSibling : this.tbody.firstChild;
      if (expected !== row.tr) this.tbody.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    for (const [name, row] of this.rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    setText(this.updatedEl, `Updated ${formatMoment(new Date())}; refreshes every ${REFRESH_MS / 1000} s.`);
  }

  makeRow(item) {
    const cells = {
      name: h("td", {}, h("a", { href: `/console/executions/${encodeURIComponent(item.name)}`, class: "mono", "data-testid": "execution-link" }, item.name)),
      status: h("td"),
      file: h("td", {}, fileCell(item)),
      started: h("td", { class: "when" }),
      duration: h("td", { class: "num" }),
    };
    const tr = h("tr", { "data-execution": item.name, "data-workflow": item.workflow || "ProcessUpload", "data-testid": "execution-row" }, Object.values(cells));
    return { tr, cells, status: null };
  }

  fillRow(row, item) {
    if (row.status !== item.status) {
      row.cells.status.replaceChildren(statusBadge(item.status));
      row.status = item.status;
      row.tr.dataset.status = item.status;
    }
    setText(row.cells.started, formatMoment(item.startDate));
    row.cells.started.title = parseTime(item.startDate)?.toISOString() || "";
    setText(row.cells.duration, formatSeconds(executionSeconds(item)));
  }
}
