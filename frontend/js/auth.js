// Sign-in, sign-up and token refresh against the Cognito user pool's public JSON API.

// Tokens live in sessionStorage, not localStorage or cookies: they end with the tab, so a shared
// computer does not stay signed in, and a reload or a share-page detour keeps the session. The API sits
// on another origin and wants a bearer header, so a cookie would not help it. Scripts can read
// sessionStorage, which is why the page renders every value as text and its CSP allows only its own scripts.
const STORAGE_KEY = "filepipe.session";
const MIN_VALIDITY_MS = 60 * 1000;
const REFRESH_RETRY_MS = 30 * 1000;

export class AuthError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "AuthError";
    this.code = code;
  }
}

const THROTTLED = "Too many attempts. Wait a few minutes, then try again.";

const MESSAGES = {
  NotAuthorizedException: {
    signIn: "Wrong email or password",
    signUp: "This service does not allow sign-up. Ask an administrator for an account.",
    confirm: "This account can't be confirmed with that code. It may already be confirmed: try signing in.",
    refresh: "Your session has ended. Sign in again.",
    default: "Wrong email or password",
  },
  UserNotFoundException: { signIn: "Wrong email or password", default: "No account uses this email address." },
  UserNotConfirmedException: { default: "Confirm your email address first: enter the code we sent you." },
  UsernameExistsException: { default: "An account with this email already exists. Sign in instead." },
  AliasExistsException: { default: "An account with this email already exists. Sign in instead." },
  CodeMismatchException: { default: "That code isn't right. Check the email and try again." },
  ExpiredCodeException: { default: "That code has expired. Send a new one." },
  PasswordResetRequiredException: { default: "You need to reset your password before signing in." },
  LimitExceededException: { default: THROTTLED },
  TooManyRequestsException: { default: THROTTLED },
  TooManyFailedAttemptsException: { default: THROTTLED },
  CodeDeliveryFailureException: { default: "We couldn't send the code email. Try again in a moment." },
  NetworkError: { default: "Can't reach the sign-in service. Check your connection and try again." },
};

// Errors whose Cognito message is written for the person typing (password rules, email format).
const SHOW_SERVICE_MESSAGE = new Set(["InvalidPasswordException", "InvalidParameterException", "UserLambdaValidationException"]);

/** The sentence to show for a Cognito error code in a given step (signIn, signUp, confirm, refresh...). */
export function authMessage(code, context, serviceMessage) {
  const entry = MESSAGES[code];
  if (entry) return entry[context] || entry.default;
  if (SHOW_SERVICE_MESSAGE.has(code) && serviceMessage) return serviceMessage;
  return serviceMessage || "Something went wrong signing in. Try again.";
}

/** The claims of a JWT, unverified: the page only reads the email and expiry it shows. */
export function decodeJwt(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/** One call of the user pool's JSON API; rejects with AuthError carrying the Cognito error name. */
export class CognitoClient {
  constructor(endpoint, clientId) {
    this.endpoint = endpoint;
    this.clientId = clientId;
  }

  async call(action, body, context) {
    let response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
        },
        body: JSON.stringify({ ClientId: this.clientId, ...body }),
      });
    } catch {
      throw new AuthError("NetworkError", authMessage("NetworkError", context));
    }
    const data = await response.json().catch(() => ({}));
    if (response.ok) return data;
    const rawType = data.__type || response.headers.get("x-amzn-ErrorType") || "UnknownError";
    const code = rawType.split("#").pop().split(":")[0];
    throw new AuthError(code, authMessage(code, context, data.message || data.Message));
  }
}

/**
 * The signed-in session: tokens, their expiry and the refresh timer. Fires "change" when someone signs
 * in or out; `detail.reason` explains a sign-out the user did not ask for.
 */
export class Auth extends EventTarget {
  constructor(config, storage = window.sessionStorage) {
    super();
    this.client = new CognitoClient(config.cognitoEndpoint, config.userPoolClientId);
    this.storage = storage;
    this.session = this.#load();
    this.refreshing = null;
    this.timer = null;
    if (this.session) this.#schedule();
    document.addEventListener("visibilitychange", () => {
      // Timers stall while a laptop sleeps; check the clock as soon as the tab is seen again.
      if (document.visibilityState === "visible" && this.session && this.#expiresSoon(2 * MIN_VALIDITY_MS)) {
        this.refresh().catch(() => {});
      }
    });
  }

  get signedIn() {
    return Boolean(this.session);
  }

  get email() {
    return this.session?.email || "";
  }

  async signIn(email, password) {
    const data = await this.client.call(
      "InitiateAuth",
      { AuthFlow: "USER_PASSWORD_AUTH", AuthParameters: { USERNAME: email, PASSWORD: password } },
      "signIn",
    );
    if (data.ChallengeName) return { challenge: data.ChallengeName, session: data.Session };
    this.#store(data.AuthenticationResult, email);
    return { challenge: null };
  }

  /** Accounts an administrator created must pick their own password on first sign-in. */
  async completeNewPassword(email, newPassword, challengeSession) {
    const data = await this.client.call(
      "RespondToAuthChallenge",
      {
        ChallengeName: "NEW_PASSWORD_REQUIRED",
        Session: challengeSession,
        ChallengeResponses: { USERNAME: email, NEW_PASSWORD: newPassword },
      },
      "signIn",
    );
    if (data.ChallengeName) throw new AuthError(data.ChallengeName, "This account needs a sign-in step this page does not support.");
    this.#store(data.AuthenticationResult, email);
  }

  async signUp(email, password) {
    const data = await this.client.call(
      "SignUp",
      { Username: email, Password: password, UserAttributes: [{ Name: "email", Value: email }] },
      "signUp",
    );
    return { confirmed: Boolean(data.UserConfirmed), destination: data.CodeDeliveryDetails?.Destination || email };
  }

  async confirmSignUp(email, code) {
    await this.client.call("ConfirmSignUp", { Username: email, ConfirmationCode: code }, "confirm");
  }

  async resendCode(email) {
    const data = await this.client.call("ResendConfirmationCode", { Username: email }, "confirm");
    return data.CodeDeliveryDetails?.Destination || email;
  }

  async forgotPassword(email) {
    const data = await this.client.call("ForgotPassword", { Username: email }, "forgot");
    return data.CodeDeliveryDetails?.Destination || email;
  }

  async confirmForgotPassword(email, code, password) {
    await this.client.call(
      "ConfirmForgotPassword",
      { Username: email, ConfirmationCode: code, Password: password },
      "confirm",
    );
  }

  /** A valid id token for the API, refreshed first when it is about to expire. */
  async idToken() {
    if (!this.session) throw new AuthError("NotSignedIn", "Sign in to continue.");
    if (this.#expiresSoon(MIN_VALIDITY_MS)) await this.refresh();
    return this.session.idToken;
  }

  /** Exchange the refresh token for new id and access tokens; concurrent callers share one request. */
  refresh() {
    if (!this.session) return Promise.reject(new AuthError("NotSignedIn", "Sign in to continue."));
    if (!this.refreshing) {
      this.refreshing = this.#refreshNow().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async #refreshNow() {
    const { refreshToken, email } = this.session;
    try {
      const data = await this.client.call(
        "InitiateAuth",
        { AuthFlow: "REFRESH_TOKEN_AUTH", AuthParameters: { REFRESH_TOKEN: refreshToken } },
        "refresh",
      );
      this.#store({ RefreshToken: refreshToken, ...data.AuthenticationResult }, email, false);
    } catch (error) {
      if (error.code === "NetworkError" && !this.#expiresSoon(0)) {
        // The tokens still work for a while: try again soon rather than signing the person out.
        this.#schedule(REFRESH_RETRY_MS);
        return;
      }
      this.signOut(authMessage("NotAuthorizedException", "refresh"));
      throw error;
    }
  }

  /** Forget the tokens; `reason` is shown on the sign-in form when the sign-out was not asked for. */
  signOut(reason = "") {
    const refreshToken = this.session?.refreshToken;
    this.session = null;
    clearTimeout(this.timer);
    this.storage.removeItem(STORAGE_KEY);
    if (refreshToken && !reason) {
      // Revoking makes a copied refresh token useless; the page is signed out whatever the answer.
      this.client.call("RevokeToken", { Token: refreshToken }, "refresh").catch(() => {});
    }
    this.dispatchEvent(new CustomEvent("change", { detail: { signedIn: false, reason } }));
  }

  #expiresSoon(marginMs) {
    return !this.session || Date.now() > this.session.expiresAt - marginMs;
  }

  #store(result, email, announce = true) {
    if (!result?.IdToken) throw new AuthError("InvalidResponse", "The sign-in service sent an unexpected answer.");
    const claims = decodeJwt(result.IdToken);
    const lifetimeMs = (Number(result.ExpiresIn) || 3600) * 1000;
    this.session = {
      idToken: result.IdToken,
      refreshToken: result.RefreshToken,
      email: claims.email || email,
      // Measured on our own clock, so a skewed device clock does not make a fresh token look expired.
      expiresAt: Date.now() + lifetimeMs,
      lifetimeMs,
    };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(this.session));
    this.#schedule();
    if (announce) this.dispatchEvent(new CustomEvent("change", { detail: { signedIn: true, reason: "" } }));
  }

  #load() {
    try {
      const session = JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
      if (session?.idToken && session.refreshToken && session.expiresAt) return session;
    } catch {
      // A damaged entry is as good as none.
    }
    this.storage.removeItem(STORAGE_KEY);
    return null;
  }

  #schedule(delayMs) {
    clearTimeout(this.timer);
    if (!this.session) return;
    // Refresh when a quarter of the lifetime is left (at most five minutes before expiry).
    const margin = Math.min(5 * 60 * 1000, (this.session.lifetimeMs || 3600000) / 4);
    const wait = delayMs ?? Math.max(0, this.session.expiresAt - margin - Date.now());
    this.timer = setTimeout(() => this.refresh().catch(() => {}), wait);
  }
}
