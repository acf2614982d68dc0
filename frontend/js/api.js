// The HTTP API client: bearer token, JSON bodies, and the API's {"error": {code, message}} answers.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

const STATUS_MESSAGES = {
  401: "Your session has ended. Sign in again.",
  403: "You are not allowed to do that.",
  404: "Not found. It may have been deleted.",
  409: "That can't be done right now.",
  413: "The file is too large.",
  429: "Too many requests. Wait a moment and try again.",
};

/** Read an error answer; the API's own message wins over the generic one for its status. */
export async function errorFromResponse(response) {
  const data = await response.json().catch(() => null);
  const error = data && typeof data.error === "object" ? data.error : data || {};
  const message =
    (typeof error.message === "string" && error.message) ||
    (typeof data?.message === "string" && data.message) ||
    STATUS_MESSAGES[response.status] ||
    (response.status >= 500 ? "The service had a problem. Try again in a moment." : `Request failed (HTTP ${response.status}).`);
  return new ApiError(response.status, error.code || `HTTP${response.status}`, message);
}

export class Api {
  /** `auth` is null for the public share routes, which take no token. */
  constructor(baseUrl, auth = null) {
    this.baseUrl = baseUrl;
    this.auth = auth;
  }

  async request(method, path, body) {
    const send = async () => {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (this.auth) headers.Authorization = `Bearer ${await this.auth.idToken()}`;
      try {
        return await fetch(this.baseUrl + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch {
        throw new ApiError(0, "NetworkError", "Can't reach the service. Check your connection.");
      }
    };
    let response = await send();
    if (response.status === 401 && this.auth) {
      // The token may have been revoked or expired early: one refresh, one retry, then sign out.
      try {
        await this.auth.refresh();
      } catch {
        throw new ApiError(401, "Unauthorized", STATUS_MESSAGES[401]);
      }
      response = await send();
      if (response.status === 401) {
        this.auth.signOut(STATUS_MESSAGES[401]);
        throw new ApiError(401, "Unauthorized", STATUS_MESSAGES[401]);
      }
    }
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  delete(path) {
    return this.request("DELETE", path);
  }

  // Routes, one place so a path change touches one line.
  listFiles(nextToken) {
    return this.get(`/files${nextToken ? `?nextToken=${encodeURIComponent(nextToken)}` : ""}`);
  }
  getFile(fileId) {
    return this.get(`/files/${encodeURIComponent(fileId)}`);
  }
  deleteFile(fileId) {
    return this.delete(`/files/${encodeURIComponent(fileId)}`);
  }
  createUpload(name, size, contentType) {
    return this.post("/uploads", { name, size, contentType });
  }
  getUpload(fileId) {
    return this.get(`/uploads/${encodeURIComponent(fileId)}`);
  }
  signUploadParts(fileId, parts) {
    return this.post(`/uploads/${encodeURIComponent(fileId)}/parts`, { parts });
  }
  completeUpload(fileId, uploadId, parts) {
    return this.post(`/uploads/${encodeURIComponent(fileId)}/complete`, { uploadId, parts });
  }
  abortUpload(fileId) {
    return this.delete(`/uploads/${encodeURIComponent(fileId)}`);
  }
  getUsage() {
    return this.get("/me/usage");
  }
  /** `settings`: optional password, slidingExpirySeconds and notifyOn ("FIRST" | "EVERY"). */
  createShare(fileId, expiresInSeconds, maxDownloads, settings = {}) {
    const body = { expiresInSeconds, ...settings };
    if (maxDownloads) body.maxDownloads = maxDownloads;
    return this.post(`/files/${encodeURIComponent(fileId)}/shares`, body);
  }
  createFilesShare(fileIds, expiresInSeconds, maxDownloads, settings = {}) {
    const body = { fileIds, expiresInSeconds, ...settings };
    if (maxDownloads) body.maxDownloads = maxDownloads;
    return this.post("/shares", body);
  }
  /** Only the fields in `changes` change; null removes a limit, the password, sliding expiry or notices. */
  updateShare(shareId, changes) {
    return this.patch(`/shares/${encodeURIComponent(shareId)}`, changes);
  }
  listShareDownloads(shareId) {
    return this.get(`/shares/${encodeURIComponent(shareId)}/downloads`);
  }
  listShares(fileId) {
    return this.get(`/files/${encodeURIComponent(fileId)}/shares`);
  }
  revokeShare(shareId) {
    return this.delete(`/shares/${encodeURIComponent(shareId)}`);
  }
  getShare(token) {
    return this.get(`/shares/${encodeURIComponent(token)}`);
  }
  /** The password goes in the body, never in the URL. */
  unlockShare(token, password) {
    return this.post(`/shares/${encodeURIComponent(token)}/unlock`, { password });
  }
  downloadShare(token, { password, fileId } = {}) {
    const body = {};
    if (password) body.password = password;
    if (fileId) body.fileId = fileId;
    return this.post(`/shares/${encodeURIComponent(token)}/download`, body);
  }
  /** `settings`: expiresInSeconds, maxFiles, maxBytes, and optionally password and note. */
  createRequestLink(settings) {
    return this.post("/requests", settings);
  }
  listRequestLinks() {
    return this.get("/requests");
  }
  /** `changes`: any of expiresInSeconds, maxFiles, maxBytes, password and note (null removes the last two). */
  updateRequestLink(requestId, changes) {
    return this.patch(`/requests/${encodeURIComponent(requestId)}`, changes);
  }
  revokeRequestLink(requestId) {
    return this.delete(`/requests/${encodeURIComponent(requestId)}`);
  }
  // A request link's guest routes: no token; a password and receipts travel in bodies, never in URLs.
  getRequestLink(token) {
    return this.get(`/requests/${encodeURIComponent(token)}`);
  }
  unlockRequestLink(token, password) {
    return this.post(`/requests/${encodeURIComponent(token)}/unlock`, { password });
  }
  createGuestUpload(token, name, size, contentType, password) {
    const body = { name, size, contentType };
    if (password) body.password = password;
    return this.post(`/requests/${encodeURIComponent(token)}/uploads`, body);
  }
  getGuestUploadProgress(token, fileId, receipt) {
    return this.post(`/requests/${encodeURIComponent(token)}/uploads/${encodeURIComponent(fileId)}/progress`, { receipt });
  }
  signGuestUploadParts(token, fileId, receipt, parts) {
    return this.post(`/requests/${encodeURIComponent(token)}/uploads/${encodeURIComponent(fileId)}/parts`, { receipt, parts });
  }
  completeGuestUpload(token, fileId, receipt, uploadId, parts) {
    return this.post(`/requests/${encodeURIComponent(token)}/uploads/${encodeURIComponent(fileId)}/complete`, { receipt, uploadId, parts });
  }
  /** `uploads`: [{fileId, receipt}]. */
  guestUploadStatus(token, uploads) {
    return this.post(`/requests/${encodeURIComponent(token)}/status`, { uploads });
  }
}
