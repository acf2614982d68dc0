// What the public link pages (/s/{token}, /r/{token}) show alike: loading the link, the view of a link
// that no longer works, and the password form. `kind` ("share" or "request") prefixes ids and test ids.

import { h, icon, replaceChildren, uid } from "./dom.js";
import { withBusy } from "./ui.js";

const GONE_TITLE = "This link doesn't work";
// A wrong password and a link that stopped working get the same answer from the service, so the page
// cannot tell them apart either.
const WRONG_PASSWORD = "That password doesn't open this link, or the link no longer works. Check the password and try again.";

/** The token from a /{letter}/{token} path, or null for any other page. */
export function tokenFromPath(pathname, letter) {
  const match = new RegExp(`^/${letter}/([^/]+)/?$`).exec(pathname);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

export function renderGone(container, kind, text) {
  document.title = `${GONE_TITLE} · filepipe`;
  replaceChildren(
    container,
    h(
      "section",
      { class: "share-card is-gone", "data-testid": `${kind}-gone`, "aria-labelledby": `${kind}-heading` },
      icon("link-off", "icon icon-hero"),
      h("h1", { id: `${kind}-heading`, tabindex: "-1" }, GONE_TITLE),
      h("p", {}, text),
    ),
  );
  container.querySelector("h1").focus();
}

/**
 * The link `load()` answers with, shown as loading meanwhile; null once the page says why there is none
 * (`goneText` for an unknown or malformed link, else that it cannot be loaded now).
 */
export async function loadLink(container, kind, { loadingText, goneText, load }) {
  replaceChildren(container, h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), loadingText));
  try {
    return await load();
  } catch (error) {
    if (error.status === 404 || error.status === 400) {
      renderGone(container, kind, goneText);
      return null;
    }
    replaceChildren(
      container,
      h(
        "section",
        { class: "share-card", role: "alert", "aria-labelledby": `${kind}-heading` },
        h("h1", { id: `${kind}-heading` }, "Can't load this link right now"),
        h("p", {}, `${error.message} Reload the page to try again.`),
      ),
    );
    return null;
  }
}

/** A link with a password: ask for it, `unlock(password)`, then `open(link, password)`; the password stays in this page only. */
export function renderLocked(container, kind, { title, heading, text, unlock, open }) {
  document.title = title;
  const passwordId = uid(`${kind}-password`);
  const errorId = uid(`${kind}-unlock-error`);
  const password = h("input", {
    id: passwordId,
    type: "password",
    autocomplete: "off",
    maxlength: "128",
    required: true,
    "aria-describedby": errorId,
    "data-testid": `${kind}-unlock-password`,
  });
  const error = h("p", { class: "form-error", id: errorId, role: "alert", hidden: true, "data-testid": `${kind}-unlock-error` });
  const button = h("button", { type: "submit", class: "btn btn-primary btn-large", "data-testid": `${kind}-unlock` }, icon("link"), h("span", { class: "btn-label" }, "Open"));
  const form = h(
    "form",
    { class: "share-unlock", novalidate: true },
    h("div", { class: "field" }, h("label", { for: passwordId }, "Password"), password),
    error,
    button,
  );
  const showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
    password.setAttribute("aria-invalid", message ? "true" : "false");
    if (message) password.focus();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!password.value) {
      showError("Type the password first.");
      return;
    }
    withBusy(button, "Checking…", async () => {
      try {
        const link = await unlock(password.value);
        open(link, password.value);
      } catch (err) {
        if (err.status === 404) showError(WRONG_PASSWORD);
        else if (err.status === 429) showError(err.message.replace(/^./, (c) => c.toUpperCase()));
        else showError(`The link could not be opened: ${err.message}`);
      }
    });
  });
  replaceChildren(
    container,
    h(
      "section",
      { class: "share-card", "data-testid": `${kind}-locked`, "aria-labelledby": `${kind}-heading` },
      icon("shield", "icon icon-hero"),
      h("h1", { id: `${kind}-heading` }, heading),
      h("p", { class: "share-facts" }, text),
      form,
    ),
  );
  password.focus();
}
