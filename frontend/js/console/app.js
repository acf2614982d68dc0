// Starts the operator console: takes the token from the address, routes /console/* to views, keeps the
// navigation's counts fresh, and asks for the token again when the runtime refuses it.

import { h, icon, replaceChildren } from "../dom.js";
import { announce } from "../ui.js";
import { ConsoleApi, forgetToken, saveToken, takeTokenFromUrl } from "./api.js";
import { DeadLettersView } from "./deadletters.js";
import { ExecutionView } from "./execution.js";
import { ExecutionsView } from "./executions.js";
import { OutboxView } from "./outbox.js";
import { Poller } from "./poller.js";

const NAV_REFRESH_MS = 5000;

const view = document.getElementById("view");
const nav = document.getElementById("console-nav");
const api = new ConsoleApi();

const ROUTES = [
  { pattern: /^\/console\/?$/, section: "executions", make: () => new ExecutionsView(api, navigate) },
  { pattern: /^\/console\/executions\/?$/, section: "executions", make: () => new ExecutionsView(api, navigate) },
  {
    pattern: /^\/console\/executions\/([^/]+)\/?$/,
    section: "executions",
    make: (match) => new ExecutionView(api, navigate, decodeURIComponent(match[1])),
  },
  { pattern: /^\/console\/dlq\/?$/, section: "dlq", make: () => new DeadLettersView(api, navigate, refreshCounts) },
  { pattern: /^\/console\/outbox\/?$/, section: "outbox", make: () => new OutboxView(api, navigate) },
];

let current = null;
let counts = null;
const links = {};
const badges = {};

function buildNav() {
  const items = [
    ["executions", "/console", "Executions"],
    ["dlq", "/console/dlq", "Dead letters"],
    ["outbox", "/console/outbox", "Outbox"],
  ];
  const list = h("ul", { class: "console-nav-list" });
  for (const [section, href, label] of items) {
    badges[section] = section === "executions" ? null : h("span", { class: "nav-count", "data-testid": `nav-count-${section}`, hidden: true });
    links[section] = h("a", { href, class: "console-nav-link", "data-testid": `nav-${section}` }, label, badges[section]);
    list.append(h("li", {}, links[section]));
  }
  replaceChildren(nav, list);
}

function setCount(section, value, label) {
  const badge = badges[section];
  if (!badge) return;
  badge.hidden = !value;
  badge.textContent = value ? String(value) : "";
  badge.setAttribute("aria-label", value ? `${value} ${label}` : "");
  badge.classList.toggle("is-alert", section === "dlq" && value > 0);
}

async function refreshCounts() {
  const [letters, outbox] = await Promise.allSettled([api.deadLetters(), api.outbox()]);
  if (letters.status === "fulfilled") setCount("dlq", letters.value.total, letters.value.total === 1 ? "message" : "messages");
  if (outbox.status === "fulfilled") setCount("outbox", outbox.value.total, outbox.value.total === 1 ? "email" : "emails");
}

function routeFor(path) {
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (match) return { route, match };
  }
  return null;
}

function renderNotFound(path) {
  document.title = "Not found · filepipe console";
  return {
    el: h(
      "section",
      { class: "console-empty", "aria-labelledby": "missing-heading" },
      h("h1", { id: "missing-heading", tabindex: "-1" }, "No such console page"),
      h("p", {}, `Nothing lives at ${path}.`),
      h("p", {}, h("a", { href: "/console" }, "Go to the executions")),
    ),
    heading: () => document.getElementById("missing-heading"),
    start() {},
    stop() {},
  };
}

function show(moveFocus) {
  current?.stop();
  const path = window.location.pathname;
  const found = routeFor(path);
  current = found ? found.route.make(found.match) : renderNotFound(path);
  for (const [section, link] of Object.entries(links)) {
    if (found && found.route.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replaceChildren(view, current.el);
  current.start();
  if (moveFocus) {
    current.heading()?.focus();
    announce(document.title.split(" · ")[0]);
  }
}

/** Go to a console path without reloading; `replace` keeps history clean for filter changes. */
function navigate(href, { replace = false, focus = true } = {}) {
  const url = new URL(href, window.location.origin);
  if (replace) window.history.replaceState(null, "", url.pathname + url.search);
  else window.history.pushState(null, "", url.pathname + url.search);
  show(focus);
}

function interceptLinks() {
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin || !url.pathname.startsWith("/console") || url.pathname.startsWith("/console/api")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => show(true));
}

function renderTokenGate(message) {
  counts?.stop();
  current?.stop();
  current = null;
  nav.hidden = true;
  document.title = "Operator token · filepipe console";
  const input = h("input", {
    id: "token-input",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-hint",
    "aria-invalid": message ? "true" : null,
  });
  const form = h(
    "form",
    { class: "token-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "token-input" }, "Operator token"), input),
    h(
      "p",
      { class: "hint", id: "token-hint" },
      h("code", {}, "filepipe local"),
      " prints the console's address when it starts (the line “console:”). Open that address, or paste the text after ",
      h("code", {}, "#token="),
      " here. The runtime also keeps it in its state file, ",
      h("code", {}, "runtime.json"),
      ".",
    ),
    message ? h("p", { class: "form-error", role: "alert" }, icon("alert"), message) : null,
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary" }, "Open the console")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    saveToken(input.value);
    start();
  });
  replaceChildren(
    view,
    h(
      "section",
      { class: "auth-card token-card", "aria-labelledby": "token-heading" },
      icon("shield", "icon icon-hero"),
      h("h1", { id: "token-heading", tabindex: "-1" }, "Operator console"),
      h("p", { class: "auth-intro" }, "This console shows and replays every user's runs. It answers only on this machine, to someone holding the token."),
      form,
    ),
  );
  input.focus();
}

function start() {
  nav.hidden = false;
  buildNav();
  counts?.stop();
  counts = new Poller(refreshCounts, NAV_REFRESH_MS);
  counts.start();
  show(false);
}

api.addEventListener("unauthorized", () => {
  forgetToken();
  renderTokenGate("The runtime did not accept that token. A restarted runtime prints a new one.");
});

interceptLinks();
if (takeTokenFromUrl()) start();
else renderTokenGate("");
