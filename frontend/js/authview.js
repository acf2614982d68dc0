// The sign-in card and its other steps: create an account, confirm the email, reset or set a password.

import { h, icon, replaceChildren, uid } from "./dom.js";
import { announce, withBusy } from "./ui.js";

const PASSWORD_HINT = "At least 12 characters, with upper- and lowercase letters and a number.";

function field({ label, type = "text", name, autocomplete, hint, value = "", inputmode, reveal = false }) {
  const id = uid(name);
  const hintId = hint ? `${id}-hint` : null;
  const input = h("input", {
    id,
    name,
    type,
    autocomplete,
    inputmode,
    required: true,
    value,
    spellcheck: type === "email" ? "false" : null,
    autocapitalize: type === "email" ? "none" : null,
    "aria-describedby": hintId,
  });
  const control = [input];
  if (reveal) {
    const toggle = h("button", { type: "button", class: "reveal", "aria-pressed": "false", "aria-controls": id }, "Show");
    toggle.setAttribute("aria-label", "Show password");
    toggle.addEventListener("click", () => {
      const showing = input.type === "text";
      input.type = showing ? "password" : "text";
      toggle.textContent = showing ? "Show" : "Hide";
      toggle.setAttribute("aria-pressed", String(!showing));
    });
    control.push(toggle);
  }
  return {
    input,
    el: h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      h("div", { class: reveal ? "input-with-button" : "input-wrap" }, control),
      hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    ),
  };
}

/**
 * Render the sign-in flow into `container`. `reason` (e.g. a session that ended) is shown above the form.
 * Signing in fires the Auth "change" event, which the app answers by showing the files.
 */
export function renderAuth(container, auth, config, reason = "") {
  const state = { email: "", challengeSession: null, notice: reason, noticeTone: reason ? "warn" : "info" };

  const show = (step, notice = "", tone = "info") => {
    state.notice = notice;
    state.noticeTone = tone;
    steps[step]();
  };

  const card = (title, intro, form, footer) => {
    const headingId = uid("auth-title");
    const notice = state.notice
      ? h("p", { class: `banner tone-${state.noticeTone}`, role: "status", "data-testid": "auth-notice" }, state.notice)
      : null;
    replaceChildren(
      container,
      h(
        "section",
        { class: "auth-card", "aria-labelledby": headingId },
        h("div", { class: "auth-brand", "aria-hidden": "true" }, icon("logo", "icon icon-logo")),
        h("h1", { id: headingId, tabindex: "-1" }, title),
        intro ? h("p", { class: "auth-intro" }, intro) : null,
        notice,
        form,
        footer ? h("div", { class: "auth-footer" }, footer) : null,
      ),
    );
    const firstEmpty = [...form.querySelectorAll("input")].find((input) => !input.value);
    (firstEmpty || form.querySelector("input") || container.querySelector("h1")).focus();
  };

  const link = (text, onClick) => {
    const button = h("button", { type: "button", class: "link-button" }, text);
    button.addEventListener("click", onClick);
    return button;
  };

  /** A form whose submit runs `action`; errors show in its alert line and focus the first field. */
  const form = (fields, submitLabel, busyLabel, action) => {
    const errorId = uid("form-error");
    const error = h("p", { class: "form-error", id: errorId, role: "alert", hidden: true, "data-testid": "auth-error" });
    const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, h("span", { class: "btn-label" }, submitLabel));
    const el = h("form", { class: "auth-form", novalidate: true }, fields.map((f) => f.el), error, submit);
    for (const f of fields) {
      f.input.setAttribute("aria-describedby", [f.input.getAttribute("aria-describedby"), errorId].filter(Boolean).join(" "));
    }
    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.dataset.busy) return;
      error.hidden = true;
      error.textContent = "";
      for (const f of fields) f.input.removeAttribute("aria-invalid");
      const empty = fields.find((f) => !f.input.value.trim());
      if (empty) {
        empty.input.setAttribute("aria-invalid", "true");
        error.textContent = `Enter your ${empty.el.querySelector("label").textContent.toLowerCase()}.`;
        error.hidden = false;
        empty.input.focus();
        return;
      }
      await withBusy(submit, busyLabel, async () => {
        try {
          await action();
        } catch (err) {
          if (!el.isConnected) return;
          error.textContent = err.message;
          error.hidden = false;
          fields.at(-1).input.setAttribute("aria-invalid", "true");
        }
      });
    });
    return el;
  };

  const steps = {
    signIn() {
      const email = field({ label: "Email", type: "email", name: "email", autocomplete: "username", value: state.email });
      const password = field({ label: "Password", type: "password", name: "password", autocomplete: "current-password", reveal: true });
      const el = form([email, password], "Sign in", "Signing in…", async () => {
        state.email = email.input.value.trim();
        try {
          const result = await auth.signIn(state.email, password.input.value);
          if (result.challenge === "NEW_PASSWORD_REQUIRED") {
            state.challengeSession = result.session;
            show("newPassword", "Choose a new password to finish signing in.");
          } else if (result.challenge) {
            throw new Error("This account needs a sign-in step this page does not support. Contact your administrator.");
          } else {
            announce("Signed in");
          }
        } catch (err) {
          if (err.code === "UserNotConfirmedException") {
            show("confirm", err.message, "warn");
            return;
          }
          if (err.code === "PasswordResetRequiredException") {
            show("forgot", err.message, "warn");
            return;
          }
          throw err;
        }
      });
      const footer = [link("Forgot your password?", () => show("forgot"))];
      if (config.allowSignUp) footer.push(h("p", {}, "New here? ", link("Create an account", () => show("signUp"))));
      card("Sign in to filepipe", "Upload, check and share files safely.", el, footer);
    },

    signUp() {
      const email = field({ label: "Email", type: "email", name: "email", autocomplete: "email", value: state.email });
      const password = field({ label: "Password", type: "password", name: "new-password", autocomplete: "new-password", hint: PASSWORD_HINT, reveal: true });
      const el = form([email, password], "Create account", "Creating account…", async () => {
        state.email = email.input.value.trim();
        const result = await auth.signUp(state.email, password.input.value);
        if (result.confirmed) {
          await auth.signIn(state.email, password.input.value);
          announce("Account created. Signed in.");
        } else {
          show("confirm", `We sent a code to ${result.destination}. Enter it to confirm your email.`);
        }
      });
      card("Create your account", "", el, h("p", {}, "Already have an account? ", link("Sign in", () => show("signIn"))));
    },

    confirm() {
      const email = field({ label: "Email", type: "email", name: "email", autocomplete: "username", value: state.email });
      const code = field({ label: "Confirmation code", name: "code", autocomplete: "one-time-code", inputmode: "numeric" });
      const el = form([email, code], "Confirm email", "Confirming…", async () => {
        state.email = email.input.value.trim();
        await auth.confirmSignUp(state.email, code.input.value.trim());
        show("signIn", "Email confirmed. Sign in with your password.", "ok");
      });
      const resend = link("Send a new code", async () => {
        state.email = email.input.value.trim();
        if (!state.email) {
          email.input.focus();
          return;
        }
        try {
          const destination = await auth.resendCode(state.email);
          show("confirm", `We sent a new code to ${destination}.`);
        } catch (err) {
          show("confirm", err.message, "warn");
        }
      });
      card("Confirm your email", "Enter the code from the email we sent you.", el, [h("p", {}, "No email? ", resend), link("Back to sign in", () => show("signIn"))]);
    },

    forgot() {
      const email = field({ label: "Email", type: "email", name: "email", autocomplete: "username", value: state.email });
      const el = form([email], "Send reset code", "Sending…", async () => {
        state.email = email.input.value.trim();
        const destination = await auth.forgotPassword(state.email);
        show("reset", `If an account uses this address, we sent a code to ${destination}.`);
      });
      card("Reset your password", "We'll email you a code to choose a new password.", el, link("Back to sign in", () => show("signIn")));
    },

    reset() {
      const email = field({ label: "Email", type: "email", name: "email", autocomplete: "username", value: state.email });
      const code = field({ label: "Reset code", name: "code", autocomplete: "one-time-code", inputmode: "numeric" });
      const password = field({ label: "New password", type: "password", name: "new-password", autocomplete: "new-password", hint: PASSWORD_HINT, reveal: true });
      const el = form([email, code, password], "Set new password", "Saving…", async () => {
        state.email = email.input.value.trim();
        await auth.confirmForgotPassword(state.email, code.input.value.trim(), password.input.value);
        show("signIn", "Password changed. Sign in with your new password.", "ok");
      });
      card("Choose a new password", "", el, link("Back to sign in", () => show("signIn")));
    },

    newPassword() {
      const password = field({ label: "New password", type: "password", name: "new-password", autocomplete: "new-password", hint: PASSWORD_HINT, reveal: true });
      const el = form([password], "Set password and sign in", "Signing in…", async () => {
        await auth.completeNewPassword(state.email, password.input.value, state.challengeSession);
        announce("Signed in");
      });
      card("Choose your password", `Signing in as ${state.email}.`, el, link("Back to sign in", () => show("signIn")));
    },
  };

  steps.signIn();
}
