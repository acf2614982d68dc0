// The console API client: the operator token as a bearer header, JSON both ways, errors as ConsoleApiError.

const TOKEN_KEY = "filepipe.console.token";
const BASE = "/console/api";

export class ConsoleApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ConsoleApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * The token arrives in the address's fragment (`/console#token=…`), which browsers never send to a
 * server. It moves to this tab's session storage and out of the address bar, so it is not bookmarked
 * or shared by accident.
 */
export function takeTokenFromUrl(location = window.location, history = window.history) {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token) {
    saveToken(token);
    history.replaceState(history.state, "", location.pathname + location.search);
  }
  return readToken();
}

export function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function saveToken(token) {
  try {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
  } catch {
    // Storage refused (private mode): the token then lasts only as long as this page.
  }
  memoryToken = token.trim();
}

export function forgetToken() {
  memoryToken = "";
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing stored.
  }
}

let memoryToken = "";

export class ConsoleApi extends EventTarget {
  token() {
    return readToken() || memoryToken;
  }

  async request(method, path, { query, body } = {}) {
    const url = new URL(BASE + path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    const token = this.token();
    const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    } catch {
      throw new ConsoleApiError(0, "NetworkError", "Can't reach the local runtime. Is `filepipe local` still running?");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      const failure = new ConsoleApiError(response.status, error.code || `HTTP${response.status}`, error.message || `Request failed (HTTP ${response.status}).`);
      // A refusal of a token the operator has replaced since (a request still in flight when a wrong
      // token was refused) says nothing of the token in use now.
      if (response.status === 401 && token === this.token()) {
        this.dispatchEvent(new CustomEvent("unauthorized", { detail: failure }));
      }
      throw failure;
    }
    return data;
  }

  executions({ status, file, limit } = {}) {
    return this.request("GET", "/executions", { query: { status, file, limit } });
  }

  execution(name) {
    return this.request("GET", `/executions/${encodeURIComponent(name)}`);
  }

  /** A workflow's definition (ProcessUpload unless named), fetched once per workflow. */
  definition(workflow = "ProcessUpload") {
    this.definitionPromises = this.definitionPromises || new Map();
    if (!this.definitionPromises.has(workflow)) {
      const promise = this.request("GET", "/definition", { query: { workflow } }).catch((error) => {
        this.definitionPromises.delete(workflow);
        throw error;
      });
      this.definitionPromises.set(workflow, promise);
    }
    return this.definitionPromises.get(workflow);
  }

  deadLetters() {
    return this.request("GET", "/dlq");
  }

  replay({ dryRun = false, file, limit } = {}) {
    const body = { dryRun };
    if (file) body.file = file;
    if (limit) body.limit = limit;
    return this.request("POST", "/dlq/replay", { body });
  }

  outbox() {
    return this.request("GET", "/outbox");
  }
}
