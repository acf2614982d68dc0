// Draws a laid-out state machine as SVG and colours each state by how it ended in one execution.

import { END, START, fitText } from "./graph.js";
import { OUTCOMES, outcomeOf } from "./status.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const NAME_FONT_SIZE = 13;
const MAX_NAME_WIDTH = 232 - 26;
// How far above its target a choice label sits (its centre), clear of the arrowhead.
const LABEL_LIFT = 19;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let canvas = null;
/** Text width in pixels as the page's font draws it (a canvas measures without touching the layout). */
export function textMeasurer(weight = 600, size = NAME_FONT_SIZE) {
  canvas = canvas || document.createElement("canvas");
  const context = canvas.getContext("2d");
  const family = getComputedStyle(document.body).fontFamily || "system-ui, sans-serif";
  context.font = `${weight} ${size}px ${family}`;
  return (text) => context.measureText(String(text)).width;
}

/** A smooth path through route points: vertical tangents between layers, straight through a layer. */
function pathData(points) {
  let data = `M${points[0].x},${points[0].y}`;
  for (let index = 1; index < points.length; index += 1) {
    const a = points[index - 1];
    const b = points[index];
    if (Math.abs(a.x - b.x) < 0.5 || Math.abs(a.y - b.y) < 0.5) {
      data += ` L${b.x},${b.y}`;
    } else {
      const middle = (a.y + b.y) / 2;
      data += ` C${a.x},${middle} ${b.x},${middle} ${b.x},${b.y}`;
    }
  }
  return data;
}

/** Where a choice label sits: on the edge's last stretch, just above the state it leads to. Edges of
 * one Choice end at different states, so their labels do not collide, and each names its target. */
function labelPoint(points) {
  const a = points[points.length - 2];
  const b = points[points.length - 1];
  const targetY = b.y - Math.min(LABEL_LIFT, (b.y - a.y) / 2);
  const middle = (a.y + b.y) / 2;
  let best = b;
  for (let step = 0; step <= 50; step += 1) {
    const t = step / 50;
    const u = 1 - t;
    const point = {
      x: u * u * u * a.x + 3 * u * u * t * a.x + 3 * u * t * t * b.x + t * t * t * b.x,
      y: u * u * u * a.y + 3 * u * u * t * middle + 3 * u * t * t * middle + t * t * t * b.y,
    };
    if (Math.abs(point.y - targetY) < Math.abs(best.y - targetY)) best = point;
  }
  return best;
}

/**
 * Which transitions a run took: consecutive entries within one scope, with the kind a caught error
 * takes. `states` are the execution's state entries in the order they were entered.
 */
export function takenEdges(layout, states, executionStatus) {
  const taken = new Set();
  const lastInScope = new Map();
  const byPair = new Map();
  for (const edge of layout.edges) {
    const key = `${edge.from}\u0000${edge.to}`;
    if (!byPair.has(key)) byPair.set(key, []);
    byPair.get(key).push(edge);
  }
  const mark = (from, to, caught) => {
    const candidates = byPair.get(`${from}\u0000${to}`) || [];
    const preferred = candidates.filter((edge) => (edge.kind === "catch") === caught);
    for (const edge of preferred.length ? preferred : candidates) taken.add(edge.id);
  };
  let first = null;
  let lastTop = null;
  for (const entry of states) {
    const scope = layout.scopes.get(entry.name);
    if (scope === undefined) continue;
    const previous = lastInScope.get(scope);
    if (previous) mark(previous.name, entry.name, previous.status === "caught");
    else if (scope === "" && first === null) first = entry.name;
    lastInScope.set(scope, entry);
    if (scope === "") lastTop = entry;
  }
  if (first) mark(START, first, false);
  if (lastTop && executionStatus === "SUCCEEDED") mark(lastTop.name, END, false);
  return taken;
}

/** Per state name: its entries in this run, the outcome of the last one, and retries over all of them. */
export function stateOutcomes(states) {
  const result = new Map();
  for (const entry of states) {
    const summary = result.get(entry.name) || { entries: [], retries: 0 };
    summary.entries.push(entry);
    summary.retries += entry.retries || 0;
    summary.outcome = outcomeOf(entry.status);
    result.set(entry.name, summary);
  }
  return result;
}

function describeNode(node, summary) {
  const outcome = summary ? summary.outcome : OUTCOMES.none;
  const parts = [`${node.name}, ${node.type} state`, outcome.label];
  if (summary && summary.entries.length > 1) parts.push(`entered ${summary.entries.length} times`);
  if (summary && summary.retries) parts.push(`${summary.retries} ${summary.retries === 1 ? "retry" : "retries"}`);
  return parts.join(", ");
}

/** "Task · caught", "Task · succeeded ×2": the type and outcome in words, after a decorative glyph. */
function subtitle(node, summary) {
  const outcome = summary ? summary.outcome : OUTCOMES.none;
  let text = `${node.type} · ${outcome.short}`;
  if (summary && summary.entries.length > 1) text += ` ×${summary.entries.length}`;
  return [svg("tspan", { class: "state-glyph", "aria-hidden": "true" }, `${outcome.glyph} `), text];
}

/**
 * The graph as an <svg>. `onSelect(name)` runs when a state is clicked or chosen with Enter/Space;
 * `select(name)` on the returned element marks one state as the selected one.
 */
export function renderGraph(layout, { title, states = [], executionStatus = "", onSelect }) {
  const measure = textMeasurer();
  const outcomes = stateOutcomes(states);
  const taken = takenEdges(layout, states, executionStatus);
  const titleId = `graph-title-${Math.random().toString(36).slice(2, 8)}`;
  const root = svg(
    "svg",
    {
      class: "asl-graph",
      viewBox: `0 0 ${layout.width} ${layout.height}`,
      width: layout.width,
      height: layout.height,
      role: "group",
      "aria-labelledby": titleId,
      "data-testid": "workflow-graph",
    },
    svg("title", { id: titleId }, title),
  );
  // Shrinks to fit a narrow panel, but not so far that names get unreadable; past that it scrolls.
  root.style.minWidth = `${Math.round(layout.width * 0.75)}px`;
  const defs = svg("defs");
  for (const variant of ["plain", "taken"]) {
    defs.append(
      svg(
        "marker",
        { id: `arrow-${variant}-${titleId}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: `arrowhead arrowhead-${variant}` }),
      ),
    );
  }
  root.append(defs);

  // Containers, then edges, then states (top to bottom, which is also the keyboard order), then labels.
  const compounds = svg("g", { class: "graph-compounds" });
  const edgeLayer = svg("g", { class: "graph-edges", "aria-hidden": "true" });
  const nodeLayer = svg("g", { class: "graph-states" });
  const labelLayer = svg("g", { class: "graph-labels", "aria-hidden": "true" });
  root.append(compounds, edgeLayer, nodeLayer, labelLayer);

  const drawn = [...layout.edges].sort((a, b) => Number(taken.has(a.id)) - Number(taken.has(b.id)));
  for (const edge of drawn) {
    const isTaken = taken.has(edge.id);
    const path = svg(
      "path",
      {
        d: pathData(edge.points),
        class: `edge edge-${edge.kind}${isTaken ? " is-taken" : ""}`,
        "marker-end": `url(#arrow-${isTaken ? "taken" : "plain"}-${titleId})`,
        "data-from": edge.from,
        "data-to": edge.to,
      },
      edge.title ? svg("title", {}, `${edge.from === START ? "Start" : edge.from} → ${edge.to === END ? "End" : edge.to}: ${edge.title}`) : null,
    );
    edgeLayer.append(path);
    if (edge.label && (edge.kind === "choice" || edge.kind === "default")) {
      const at = labelPoint(edge.points);
      const text = fitText(edge.label, 150, textMeasurer(500, 11));
      const width = textMeasurer(500, 11)(text) + 10;
      labelLayer.append(
        svg(
          "g",
          { class: `edge-label${isTaken ? " is-taken" : ""}`, transform: `translate(${at.x - width / 2},${at.y - 9})` },
          svg("rect", { width, height: 18, rx: 4 }),
          svg("text", { x: width / 2, y: 12.5, "text-anchor": "middle" }, text),
        ),
      );
    }
  }

  const groups = new Map();
  const ordered = [...layout.nodes].sort((a, b) => a.y - b.y || a.x - b.x);
  for (const node of ordered) {
    if (node.kind !== "state") {
      const reached = node.kind === "start" ? states.length > 0 : executionStatus === "SUCCEEDED";
      nodeLayer.append(
        svg(
          "g",
          { class: `terminal terminal-${node.kind}${reached ? " is-reached" : ""}`, transform: `translate(${node.x},${node.y})`, "aria-hidden": "true" },
          svg("circle", { cx: node.w / 2, cy: node.h / 2, r: node.w / 2 - 1 }),
          node.kind === "end" ? svg("circle", { cx: node.w / 2, cy: node.h / 2, r: node.w / 2 - 6, class: "terminal-core" }) : null,
        ),
      );
      continue;
    }
    const summary = outcomes.get(node.name);
    const outcome = summary ? summary.outcome : OUTCOMES.none;
    const compound = Boolean(node.lanes);
    const group = svg("g", {
      class: `state outcome-${outcome.key} type-${node.type.toLowerCase()}${compound ? " is-compound" : ""}`,
      transform: `translate(${node.x},${node.y})`,
      tabindex: 0,
      role: "button",
      "aria-pressed": "false",
      "data-state": node.name,
      "data-outcome": outcome.key,
      "data-testid": "graph-state",
    });
    const rounded = node.type === "Succeed" || node.type === "Fail" ? node.h / 2 : node.type === "Choice" ? 14 : 8;
    let backdrop = null;
    if (compound) {
      // The box and its lanes sit behind the edges; the focusable part is the heading, kept in reading order.
      backdrop = svg(
        "g",
        { class: `compound outcome-${outcome.key}`, transform: `translate(${node.x},${node.y})`, "aria-hidden": "true" },
        svg("rect", { class: "state-box", width: node.w, height: node.h, rx: 12 }),
        ...node.lanes.map((lane) => svg("rect", { class: "lane", x: lane.x - node.x, y: lane.y - node.y, width: lane.w, height: lane.h, rx: 8 })),
      );
      compounds.append(backdrop);
      group.append(svg("rect", { class: "compound-head", width: node.w, height: 40, rx: 12 }));
    } else {
      group.append(svg("rect", { class: "state-box", width: node.w, height: node.h, rx: rounded }));
    }
    group.append(
      svg("rect", { class: "focus-ring", x: -5, y: -5, width: node.w + 10, height: node.h + 10, rx: (compound ? 12 : rounded) + 4 }),
      svg("text", { class: "state-name", x: compound ? 12 : node.w / 2, y: compound ? 18 : 19, "text-anchor": compound ? "start" : "middle" }, fitText(node.name, compound ? node.w - 24 : MAX_NAME_WIDTH, measure)),
      svg("text", { class: "state-meta", x: compound ? 12 : node.w / 2, y: compound ? 33 : 36, "text-anchor": compound ? "start" : "middle" }, ...subtitle(node, summary)),
      svg("title", {}, describeNode(node, summary)),
    );
    const choose = () => onSelect && onSelect(node.name);
    group.addEventListener("click", choose);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose();
      }
    });
    if (backdrop) backdrop.addEventListener("click", choose);
    groups.set(node.name, { group, backdrop });
    nodeLayer.append(group);
  }
  root.select = (name) => {
    for (const [stateName, { group, backdrop }] of groups) {
      const selected = stateName === name;
      group.setAttribute("aria-pressed", String(selected));
      group.classList.toggle("is-selected", selected);
      backdrop?.classList.toggle("is-selected", selected);
    }
  };
  root.focusState = (name) => groups.get(name)?.group.focus();
  return root;
}
