// What the share and request-link dialogs build alike: the expiry choice, the password rule, the box that
// shows a new link once with its copy button, revoking a link, and the modal's life.

import { h, icon, uid } from "./dom.js";
import { announce, confirmDialog, copyText, withBusy } from "./ui.js";

export const DAY = 24 * 60 * 60;
export const EXPIRY_CHOICES = [
  { seconds: DAY, label: "1 day" },
  { seconds: 7 * DAY, label: "7 days", selected: true },
  { seconds: 30 * DAY, label: "30 days" },
];
export const MIN_PASSWORD = 6;
export const MAX_PASSWORD = 128;

/** A select of EXPIRY_CHOICES, 7 days chosen; `suffix` follows each label ("from now"). */
export function expirySelect(attrs, suffix = "") {
  return h(
    "select",
    attrs,
    EXPIRY_CHOICES.map((choice) => h("option", { value: String(choice.seconds), selected: Boolean(choice.selected) }, `${choice.label}${suffix}`)),
  );
}

/** A checkbox `input` inside its label, with an optional hint under it. */
export function checkField(input, label, hintText) {
  const hintId = hintText ? uid("hint") : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field check-field" },
    h("label", { for: input.id }, input, h("span", {}, label)),
    hintText ? h("p", { class: "hint", id: hintId }, hintText) : null,
  );
}

/** A password typed into `input`: null when empty, else the text or a message saying what is wrong. */
export function passwordFrom(input) {
  const value = input.value;
  if (!value) return { value: null };
  if (value.length < MIN_PASSWORD || value.length > MAX_PASSWORD || !value.trim()) {
    return { error: `A password needs ${MIN_PASSWORD} to ${MAX_PASSWORD} characters, not only spaces.` };
  }
  return { value };
}

/** The hidden box a new link appears in, once, with a Copy link button; `testid` prefixes its test ids. */
export function newLinkBox({ label, testid, copyTestid }) {
  const urlId = uid(`${testid}-url`);
  const urlInput = h("input", { id: urlId, type: "text", readonly: true, class: "mono", "data-testid": `${testid}-url` });
  const copyButton = h("button", { type: "button", class: "btn", "data-testid": copyTestid }, icon("copy"), h("span", { class: "btn-label" }, "Copy link"));
  const note = h("p", { class: "hint" });
  const box = h(
    "div",
    { class: "share-result", hidden: true, "data-testid": `${testid}-result` },
    h("label", { for: urlId }, label),
    h("div", { class: "copy-row" }, urlInput, copyButton),
    note,
  );
  copyButton.addEventListener("click", async () => {
    if (await copyText(urlInput.value)) {
      copyButton.querySelector(".btn-label").textContent = "Copied";
      announce("Link copied to the clipboard");
      setTimeout(() => {
        copyButton.querySelector(".btn-label").textContent = "Copy link";
      }, 2000);
    } else {
      urlInput.focus();
      urlInput.select();
      announce("Couldn't copy automatically. The link is selected: press Control C or Command C to copy it.");
    }
  });
  return { box, urlInput, copyButton, note };
}

/** Ask first, then `revoke()`; `after()` draws the list again. */
export async function revokeAfterAsking(button, { title, message, revoke, revoked, showError, after }) {
  const confirmed = await confirmDialog({ title, message, confirmLabel: "Revoke link" });
  if (!confirmed) return;
  await withBusy(button, "Revoking…", async () => {
    try {
      await revoke();
      announce(revoked);
    } catch (err) {
      // A 404 means it is gone already, which is what was asked. Other errors show inside the dialog:
      // page toasts sit behind the modal.
      if (err.status !== 404) {
        showError(`Couldn't revoke the link: ${err.message}`);
        return;
      }
    }
    await after();
  });
}

/** Show `dialog` as a modal; once closed it leaves the page, `onClosed()` runs and focus goes back to `opener`. */
export function showModal(dialog, closeButton, opener, onClosed) {
  closeButton.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClosed();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
}
