// Reads /config.json, which the local runtime serves and a deploy writes next to index.html.

export class ConfigError extends Error {}

function stripSlash(url) {
  return String(url).replace(/\/+$/, "");
}

function parseTypes(value) {
  if (Array.isArray(value)) return value.map((t) => String(t).trim().toLowerCase()).filter(Boolean);
  if (typeof value === "string") return value.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
  return null;
}

/** Turn the raw JSON into the settings the page uses; optional limits become null when absent. */
export function normalizeConfig(raw) {
  if (!raw || typeof raw !== "object") throw new ConfigError("config.json is not a JSON object");
  const missing = ["apiUrl", "userPoolClientId"].filter((key) => !raw[key]);
  if (!raw.cognitoEndpoint && !raw.region) missing.push("cognitoEndpoint");
  if (missing.length) throw new ConfigError(`config.json lacks ${missing.join(", ")}`);
  const maxFileBytes = Number(raw.maxFileBytes);
  const allowedTypes = parseTypes(raw.allowedTypes);
  return {
    apiUrl: stripSlash(raw.apiUrl),
    region: raw.region || "",
    userPoolId: raw.userPoolId || "",
    userPoolClientId: raw.userPoolClientId,
    cognitoEndpoint: raw.cognitoEndpoint || `https://cognito-idp.${raw.region}.amazonaws.com/`,
    maxFileBytes: Number.isFinite(maxFileBytes) && maxFileBytes > 0 ? maxFileBytes : null,
    allowedTypes: allowedTypes && allowedTypes.length ? allowedTypes : null,
    allowSignUp: raw.allowSignUp !== false,
  };
}

export async function loadConfig() {
  let response;
  try {
    response = await fetch("/config.json", { cache: "no-store", headers: { Accept: "application/json" } });
  } catch {
    throw new ConfigError("Can't reach the server to load the settings. Check your connection and reload.");
  }
  if (!response.ok) throw new ConfigError(`The settings file could not be loaded (HTTP ${response.status}).`);
  let raw;
  try {
    raw = await response.json();
  } catch {
    throw new ConfigError("The settings file is not valid JSON.");
  }
  return normalizeConfig(raw);
}
