// Lays out an Amazon States Language definition as a top-down graph. No DOM here: text widths come from
// the `measure` function the caller passes, so the layout is the same wherever it runs.
//
// Each scope (the machine, and every branch of a Parallel or Map) is laid out in layers: back edges are
// reversed, every state sits one layer below its deepest predecessor, long edges run through dummy
// points (edges into one state share one rail), layers are ordered to cut crossings, and x positions
// pull each node towards its neighbours without overlaps. A Parallel or Map is one node in its scope,
// sized to hold its branches side by side.

export const START = "__start__";
export const END = "__end__";

const NODE_HEIGHT = 46;
const MIN_WIDTH = 124;
const MAX_WIDTH = 232;
const TEXT_PADDING = 30;
const TERMINAL = 22;
// The line under a state's name is drawn at 11 px against the name's 13 px.
const META_SCALE = 11 / 13;
const GAP_X = 24;
const GAP_DUMMY = 12;
const GAP_Y = 46;
const MARGIN = 18;
const LANE_PADDING = 10;
const COMPOUND_HEAD = 40;
const COMPOUND_PADDING = 10;
const BRANCH_GAP = 12;
const ORDER_SWEEPS = 8;
const PLACE_SWEEPS = 8;
const PORT_SPACING = 14;

const COMPOUND_TYPES = new Set(["Parallel", "Map"]);

const OPERATORS = {
  StringEquals: "=",
  NumericEquals: "=",
  BooleanEquals: "=",
  TimestampEquals: "=",
  StringLessThan: "<",
  NumericLessThan: "<",
  TimestampLessThan: "<",
  StringGreaterThan: ">",
  NumericGreaterThan: ">",
  TimestampGreaterThan: ">",
  StringLessThanEquals: "≤",
  NumericLessThanEquals: "≤",
  TimestampLessThanEquals: "≤",
  StringGreaterThanEquals: "≥",
  NumericGreaterThanEquals: "≥",
  TimestampGreaterThanEquals: "≥",
  StringMatches: "matches",
};

/** The branches of a Parallel, or the one processor of a Map (both spellings). */
export function branchesOf(state) {
  if (state.Type === "Parallel") return state.Branches || [];
  if (state.Type === "Map") {
    const processor = state.ItemProcessor || state.Iterator;
    return processor ? [processor] : [];
  }
  return [];
}

function lastPathSegment(path) {
  const parts = String(path).split(".");
  return parts[parts.length - 1] || String(path);
}

/** "verdict = CLEAN" for one Choice rule; compound rules read as "and(…)", "or(…)", "not(…)". */
export function ruleLabel(rule) {
  if (typeof rule.Condition === "string") return rule.Condition;
  for (const combinator of ["And", "Or", "Not"]) {
    if (rule[combinator]) return `${combinator.toLowerCase()}(…)`;
  }
  const subject = rule.Variable ? lastPathSegment(rule.Variable) : "";
  for (const [key, value] of Object.entries(rule)) {
    if (key === "Variable" || key === "Next" || key === "Comment") continue;
    const name = key.endsWith("Path") ? key.slice(0, -4) : key;
    const shown = key.endsWith("Path") ? lastPathSegment(value) : JSON.stringify(value).replace(/^"|"$/g, "");
    if (OPERATORS[name]) return `${subject} ${OPERATORS[name]} ${shown}`;
    if (name === "IsPresent") return `${subject} ${value ? "present" : "absent"}`;
    if (name === "IsNull") return `${subject} ${value ? "is null" : "not null"}`;
    if (name.startsWith("Is")) return `${subject} ${value ? "" : "not "}${name.slice(2).toLowerCase()}`;
  }
  return rule.Comment || "rule";
}

function errorsLabel(errors) {
  const names = (errors || []).map((name) => (name === "States.ALL" ? "any error" : name));
  return names.join(", ");
}

/** Truncate `text` with an ellipsis so it measures at most `width`. */
export function fitText(text, width, measure) {
  if (measure(text) <= width) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (measure(`${text.slice(0, mid)}…`) <= width) low = mid;
    else high = mid - 1;
  }
  return `${text.slice(0, low)}…`;
}

// ------------------------------------------------------------------ the graph of one scope

/** Room for the line under a state's name ("○ Choice · not reached", in a smaller font). */
function metaWidth(type, measure) {
  return measure(`○ ${type} · not reached`) * META_SCALE;
}

function buildScope(states, startAt, measure, top, scopeId, scopes) {
  const nodes = new Map();
  const edges = [];
  for (const [name, state] of Object.entries(states || {})) {
    scopes.set(name, scopeId);
    const node = { id: name, name, type: state.Type, state, kind: "state" };
    const branches = branchesOf(state);
    if (COMPOUND_TYPES.has(state.Type) && branches.length) {
      node.branches = branches.map((branch, index) =>
        layoutScope(branch.States, branch.StartAt, measure, false, `${name}#${index}`, scopes),
      );
      const inner = node.branches.reduce((sum, branch) => sum + branch.width, 0) + BRANCH_GAP * (branches.length - 1);
      const head = Math.min(measure(name) + TEXT_PADDING, MAX_WIDTH * 1.5);
      node.w = Math.max(inner + 2 * COMPOUND_PADDING, head, MIN_WIDTH);
      node.h = COMPOUND_HEAD + Math.max(...node.branches.map((branch) => branch.height)) + COMPOUND_PADDING;
    } else {
      node.w = Math.max(MIN_WIDTH, Math.min(MAX_WIDTH, Math.max(measure(name) + TEXT_PADDING, metaWidth(state.Type, measure) + 20)));
      node.h = NODE_HEIGHT;
    }
    nodes.set(name, node);
  }
  const add = (from, to, kind, label = "", title = "") => {
    if (!nodes.has(to)) return;
    edges.push({ id: `${from}->${to}#${edges.length}`, from, to, kind, label, title: title || label });
  };
  if (top) {
    nodes.set(START, { id: START, name: "Start", type: "Start", kind: "start", w: TERMINAL, h: TERMINAL });
    add(START, startAt, "start");
  }
  let ends = false;
  const toEnd = (from) => {
    if (!top) return;
    if (!nodes.has(END)) nodes.set(END, { id: END, name: "End", type: "End", kind: "end", w: TERMINAL, h: TERMINAL });
    ends = true;
    add(from, END, "end");
  };
  for (const [name, state] of Object.entries(states || {})) {
    if (state.Type === "Choice") {
      for (const rule of state.Choices || []) add(name, rule.Next, "choice", ruleLabel(rule));
      if (state.Default) add(name, state.Default, "default", "otherwise");
    } else if (state.Type === "Succeed") {
      toEnd(name);
    } else if (state.Type !== "Fail") {
      if (state.Next) add(name, state.Next, "next");
      else if (state.End) toEnd(name);
    }
    for (const catcher of state.Catch || []) {
      const errors = errorsLabel(catcher.ErrorEquals);
      add(name, catcher.Next, "catch", errors, `on ${errors}`);
    }
  }
  if (top && !ends) nodes.delete(END);
  const root = nodes.has(START) ? START : startAt;
  return { nodes, edges, root };
}

// ------------------------------------------------------------------ layering

function depthFirst(nodes, edges, root) {
  const outgoing = new Map([...nodes.keys()].map((id) => [id, []]));
  for (const edge of edges) outgoing.get(edge.from)?.push(edge);
  const visited = new Set();
  const onStack = new Set();
  const order = [];
  const back = new Set();
  const visit = (start) => {
    const stack = [[start, 0]];
    visited.add(start);
    onStack.add(start);
    order.push(start);
    while (stack.length) {
      const frame = stack[stack.length - 1];
      const [id, index] = frame;
      const out = outgoing.get(id) || [];
      if (index >= out.length) {
        onStack.delete(id);
        stack.pop();
        continue;
      }
      frame[1] += 1;
      const edge = out[index];
      if (onStack.has(edge.to)) back.add(edge);
      else if (!visited.has(edge.to)) {
        visited.add(edge.to);
        onStack.add(edge.to);
        order.push(edge.to);
        stack.push([edge.to, 0]);
      }
    }
  };
  if (nodes.has(root)) visit(root);
  for (const id of nodes.keys()) if (!visited.has(id)) visit(id);
  return { order, back };
}

function assignLayers(nodes, arcs, order) {
  const rank = new Map(order.map((id, index) => [id, index]));
  const incoming = new Map([...nodes.keys()].map((id) => [id, 0]));
  const outgoing = new Map([...nodes.keys()].map((id) => [id, []]));
  for (const arc of arcs) {
    incoming.set(arc.v, incoming.get(arc.v) + 1);
    outgoing.get(arc.u).push(arc);
  }
  const layer = new Map([...nodes.keys()].map((id) => [id, 0]));
  const ready = order.filter((id) => incoming.get(id) === 0);
  while (ready.length) {
    ready.sort((a, b) => rank.get(a) - rank.get(b));
    const id = ready.shift();
    for (const arc of outgoing.get(id)) {
      layer.set(arc.v, Math.max(layer.get(arc.v), layer.get(id) + 1));
      incoming.set(arc.v, incoming.get(arc.v) - 1);
      if (incoming.get(arc.v) === 0) ready.push(arc.v);
    }
  }
  return layer;
}

// ------------------------------------------------------------------ one scope, laid out

function layoutScope(states, startAt, measure, top, scopeId, scopes) {
  const { nodes, edges, root } = buildScope(states, startAt, measure, top, scopeId, scopes);
  const { order, back } = depthFirst(nodes, edges, root);
  const loops = edges.filter((edge) => edge.from === edge.to);
  const arcs = edges
    .filter((edge) => edge.from !== edge.to)
    .map((edge) => (back.has(edge) ? { u: edge.to, v: edge.from, edge, reversed: true } : { u: edge.from, v: edge.to, edge, reversed: false }));
  const layerOf = assignLayers(nodes, arcs, order);
  const layerCount = Math.max(0, ...layerOf.values()) + 1;

  // Vertices: states, and dummy points carrying long arcs. Arcs into one state share a rail per style.
  const vertices = new Map();
  for (const id of order) vertices.set(id, { id, node: nodes.get(id), layer: layerOf.get(id), w: nodes.get(id).w, up: [], down: [] });
  const link = (upper, lower) => {
    vertices.get(upper).down.push(lower);
    vertices.get(lower).up.push(upper);
  };
  const rails = new Map();
  let dummyCount = 0;
  const dummy = (layer) => {
    dummyCount += 1;
    const id = `dummy:${scopeId}:${dummyCount}`;
    vertices.set(id, { id, dummy: true, layer, w: 0, up: [], down: [] });
    return id;
  };
  const routes = [];
  for (const arc of arcs) {
    const from = layerOf.get(arc.u);
    const to = layerOf.get(arc.v);
    const chain = [];
    if (to - from > 1) {
      const style = arc.edge.kind === "catch" ? "catch" : "flow";
      const key = `${arc.v}|${style}|${arc.reversed}`;
      let rail = rails.get(key);
      if (!rail) {
        rail = new Map();
        rails.set(key, rail);
      }
      // A rail always covers a run of layers ending just above its target; extend it upwards as needed.
      for (let layer = to - 1; layer > from; layer -= 1) {
        if (rail.has(layer)) continue;
        const point = dummy(layer);
        link(point, rail.get(layer + 1) ?? arc.v);
        rail.set(layer, point);
      }
      for (let layer = from + 1; layer < to; layer += 1) chain.push(rail.get(layer));
      const first = chain[0];
      link(arc.u, first);
    } else {
      link(arc.u, arc.v);
    }
    routes.push({ arc, chain });
  }

  // Layers, first ordered by the depth-first discovery of each vertex (dummies after their upper end).
  const layers = Array.from({ length: layerCount }, () => []);
  for (const id of order) layers[layerOf.get(id)].push(id);
  for (const [id, vertex] of vertices) if (vertex.dummy) layers[vertex.layer].push(id);
  const position = new Map();
  const renumber = () => layers.forEach((layer) => layer.forEach((id, index) => position.set(id, index)));
  renumber();
  for (const layer of layers) {
    layer.sort((a, b) => barycenter(vertices.get(a).up, position, position.get(a)) - barycenter(vertices.get(b).up, position, position.get(b)));
  }
  renumber();
  reduceCrossings(layers, vertices, position, renumber);

  const x = placeHorizontally(layers, vertices);
  const { layerTop, layerHeight, height } = placeVertically(layers, vertices, top ? MARGIN : LANE_PADDING);
  let minX = Infinity;
  let maxX = -Infinity;
  for (const [id, vertex] of vertices) {
    minX = Math.min(minX, x.get(id) - vertex.w / 2);
    maxX = Math.max(maxX, x.get(id) + vertex.w / 2);
  }
  const margin = top ? MARGIN : LANE_PADDING;
  const shift = margin - minX;
  const placed = [];
  for (const [id, node] of nodes) {
    const vertex = vertices.get(id);
    const layer = vertex.layer;
    node.x = x.get(id) + shift - node.w / 2;
    node.y = layerTop[layer] + (layerHeight[layer] - node.h) / 2;
    placed.push(node);
  }
  const point = (id) => {
    const vertex = vertices.get(id);
    return { x: x.get(id) + shift, top: layerTop[vertex.layer], bottom: layerTop[vertex.layer] + layerHeight[vertex.layer] };
  };
  const laidEdges = routes.map(({ arc, chain }) => {
    const upper = nodes.get(arc.u);
    const lower = nodes.get(arc.v);
    const points = [{ x: upper.x + upper.w / 2, y: upper.y + upper.h, port: arc.u, side: "bottom" }];
    for (const id of chain) {
      const p = point(id);
      points.push({ x: p.x, y: p.top }, { x: p.x, y: p.bottom });
    }
    points.push({ x: lower.x + lower.w / 2, y: lower.y, port: arc.v, side: "top" });
    return { ...arc.edge, reversed: arc.reversed, points };
  });
  for (const edge of loops) {
    const node = nodes.get(edge.from);
    const right = node.x + node.w;
    laidEdges.push({
      ...edge,
      reversed: false,
      loop: true,
      points: [
        { x: right, y: node.y + node.h * 0.3 },
        { x: right + 22, y: node.y + node.h * 0.3 },
        { x: right + 22, y: node.y + node.h * 0.7 },
        { x: right, y: node.y + node.h * 0.7 },
      ],
    });
  }
  spreadPorts(laidEdges, nodes);
  for (const edge of laidEdges) if (edge.reversed) edge.points.reverse();
  return { width: maxX - minX + 2 * margin + (loops.length ? 24 : 0), height, nodes: placed, edges: laidEdges };
}

function barycenter(neighbours, position, fallback) {
  if (!neighbours.length) return fallback;
  return neighbours.reduce((sum, id) => sum + position.get(id), 0) / neighbours.length;
}

function crossings(layers, vertices, position) {
  let total = 0;
  for (let index = 0; index + 1 < layers.length; index += 1) {
    const pairs = [];
    for (const id of layers[index]) for (const lower of vertices.get(id).down) pairs.push([position.get(id), position.get(lower)]);
    for (let a = 0; a < pairs.length; a += 1) {
      for (let b = a + 1; b < pairs.length; b += 1) {
        if ((pairs[a][0] - pairs[b][0]) * (pairs[a][1] - pairs[b][1]) < 0) total += 1;
      }
    }
  }
  return total;
}

function reduceCrossings(layers, vertices, position, renumber) {
  let best = layers.map((layer) => [...layer]);
  let fewest = crossings(layers, vertices, position);
  for (let sweep = 0; sweep < ORDER_SWEEPS && fewest > 0; sweep += 1) {
    const downward = sweep % 2 === 0;
    const indexes = layers.map((_, index) => index);
    if (!downward) indexes.reverse();
    for (const index of indexes.slice(1)) {
      const layer = layers[index];
      const key = new Map(layer.map((id) => [id, barycenter(downward ? vertices.get(id).up : vertices.get(id).down, position, position.get(id))]));
      layer.sort((a, b) => key.get(a) - key.get(b) || position.get(a) - position.get(b));
      layer.forEach((id, i) => position.set(id, i));
    }
    const count = crossings(layers, vertices, position);
    if (count < fewest) {
      fewest = count;
      best = layers.map((layer) => [...layer]);
    }
  }
  best.forEach((layer, index) => {
    layers[index] = layer;
  });
  renumber();
}

function separation(a, b) {
  if (a.dummy && b.dummy) return GAP_DUMMY;
  if (a.dummy || b.dummy) return (a.w + b.w) / 2 + GAP_DUMMY + 4;
  return (a.w + b.w) / 2 + GAP_X;
}

/** Weighted isotonic regression (pool adjacent violators): the nondecreasing fit closest to `values`. */
function isotonic(values, weights) {
  const blocks = [];
  values.forEach((value, index) => {
    blocks.push({ total: value * weights[index], weight: weights[index], count: 1 });
    while (blocks.length > 1) {
      const last = blocks[blocks.length - 1];
      const previous = blocks[blocks.length - 2];
      if (previous.total / previous.weight <= last.total / last.weight) break;
      blocks.pop();
      previous.total += last.total;
      previous.weight += last.weight;
      previous.count += last.count;
    }
  });
  return blocks.flatMap((block) => Array(block.count).fill(block.total / block.weight));
}

function placeHorizontally(layers, vertices) {
  const x = new Map();
  for (const layer of layers) {
    let cursor = 0;
    layer.forEach((id, index) => {
      if (index > 0) cursor += separation(vertices.get(layer[index - 1]), vertices.get(id));
      x.set(id, cursor);
    });
    const middle = cursor / 2;
    for (const id of layer) x.set(id, x.get(id) - middle);
  }
  for (let sweep = 0; sweep < PLACE_SWEEPS; sweep += 1) {
    const last = sweep === PLACE_SWEEPS - 1;
    const downward = sweep % 2 === 0;
    const indexes = layers.map((_, index) => index);
    if (!downward) indexes.reverse();
    for (const index of indexes) {
      const layer = layers[index];
      if (!layer.length) continue;
      const offsets = [0];
      for (let i = 1; i < layer.length; i += 1) offsets.push(offsets[i - 1] + separation(vertices.get(layer[i - 1]), vertices.get(layer[i])));
      const desired = [];
      const weights = [];
      layer.forEach((id) => {
        const vertex = vertices.get(id);
        const neighbours = last ? [...vertex.up, ...vertex.down] : downward ? vertex.up : vertex.down;
        if (neighbours.length) {
          desired.push(neighbours.reduce((sum, n) => sum + x.get(n), 0) / neighbours.length);
          // Dummies weigh most, so long edges run straight; then nodes with a single neighbour.
          weights.push(vertex.dummy ? 4 : neighbours.length === 1 ? 2 : 1);
        } else {
          desired.push(x.get(id));
          weights.push(0.05);
        }
      });
      const fitted = isotonic(
        desired.map((value, i) => value - offsets[i]),
        weights,
      );
      layer.forEach((id, i) => x.set(id, fitted[i] + offsets[i]));
    }
  }
  return x;
}

function placeVertically(layers, vertices, margin) {
  const layerTop = [];
  const layerHeight = [];
  let cursor = margin;
  for (const layer of layers) {
    const height = Math.max(0, ...layer.map((id) => (vertices.get(id).node ? vertices.get(id).node.h : 0)));
    layerTop.push(cursor);
    layerHeight.push(height);
    cursor += height + GAP_Y;
  }
  return { layerTop, layerHeight, height: cursor - GAP_Y + margin };
}

/** Edges leaving (or entering) one side of a node get their own ports, ordered by where they go. */
function spreadPorts(edges, nodes) {
  const groups = new Map();
  for (const edge of edges) {
    if (edge.loop) continue;
    const ends = [
      [edge.points[0], edge.points[1]],
      [edge.points[edge.points.length - 1], edge.points[edge.points.length - 2]],
    ];
    for (const [end, next] of ends) {
      if (!end.port) continue;
      const key = `${end.port}|${end.side}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push({ end, next });
    }
  }
  for (const [key, members] of groups) {
    const node = nodes.get(key.split("|")[0]);
    // Ends heading to the same point share a port: a rail arrives as one line.
    const slots = new Map();
    for (const member of members) {
      const slot = `${Math.round(member.next.x)},${Math.round(member.next.y)}`;
      if (!slots.has(slot)) slots.set(slot, { x: member.next.x, members: [] });
      slots.get(slot).members.push(member);
    }
    const ordered = [...slots.values()].sort((a, b) => a.x - b.x);
    const spacing = ordered.length > 1 ? Math.min(PORT_SPACING, (node.w - 20) / (ordered.length - 1)) : 0;
    ordered.forEach((slot, index) => {
      const offset = (index - (ordered.length - 1) / 2) * spacing;
      for (const member of slot.members) member.end.x = node.x + node.w / 2 + offset;
    });
  }
}

// ------------------------------------------------------------------ the whole machine

/**
 * Lay out `definition` (parsed ASL). `measure(text)` gives the width of a state name in pixels.
 * Returns {width, height, nodes, edges, scopes}: nodes and edge points in absolute coordinates, nested
 * states after their Parallel/Map (which carries `lanes`, its branches' boxes), and `scopes` mapping each
 * state name to its scope ("" for the machine, "Name#i" for branch i of state Name).
 */
export function layoutDefinition(definition, measure) {
  const scopes = new Map();
  const root = layoutScope(definition.States, definition.StartAt, measure, true, "", scopes);
  const nodes = [];
  const edges = [];
  const flatten = (scope, dx, dy, parent) => {
    for (const node of scope.nodes) {
      const placed = { ...node, x: node.x + dx, y: node.y + dy, parent };
      delete placed.branches;
      nodes.push(placed);
      if (node.branches) {
        const total = node.branches.reduce((sum, branch) => sum + branch.width, 0) + BRANCH_GAP * (node.branches.length - 1);
        let left = placed.x + (placed.w - total) / 2;
        placed.lanes = node.branches.map((branch) => {
          const lane = { x: left, y: placed.y + COMPOUND_HEAD, w: branch.width, h: placed.h - COMPOUND_HEAD - COMPOUND_PADDING };
          flatten(branch, lane.x, lane.y, node.id);
          left += branch.width + BRANCH_GAP;
          return lane;
        });
      }
    }
    for (const edge of scope.edges) {
      edges.push({ ...edge, points: edge.points.map((p) => ({ x: p.x + dx, y: p.y + dy })) });
    }
  };
  flatten(root, 0, 0, null);
  return { width: Math.ceil(root.width), height: Math.ceil(root.height), nodes, edges, scopes };
}
