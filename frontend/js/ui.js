// Shared page furniture: the screen-reader announcer, toasts, the confirm dialog and busy buttons.

import { h, icon } from "./dom.js";

let pending = [];
let flushTimer = null;

/**
 * Say something through the polite live region. Messages arriving together are read as one, so a burst
 * of status changes does not cut itself off.
 */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region || !message) return;
  pending.push(message);
  clearTimeout(flushTimer);
  flushTimer = setTimeout(() => {
    const text = pending.join(". ");
    pending = [];
    // Clearing first makes screen readers repeat a message identical to the previous one.
    region.textContent = "";
    setTimeout(() => {
      region.textContent = text;
    }, 50);
  }, 300);
}

/** A short visible message; errors stay until dismissed, others fade after a few seconds. */
export function toast(message, tone = "info") {
  const stack = document.getElementById("toasts");
  if (!stack) return;
  const item = h(
    "div",
    // Only errors speak for themselves; other toasts repeat what announce() already said.
    { class: `toast tone-${tone}`, role: tone === "danger" ? "alert" : null, "data-testid": "toast" },
    icon(tone === "danger" ? "alert" : tone === "ok" ? "check" : "info"),
    h("p", {}, message),
  );
  const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss message" }, icon("x"));
  close.addEventListener("click", () => item.remove());
  item.append(close);
  stack.append(item);
  if (tone !== "danger") setTimeout(() => item.remove(), 6000);
}

/**
 * Ask before doing something that cannot be undone. Resolves true when confirmed. Built on <dialog> so
 * focus is trapped, Escape cancels and focus goes back where it was.
 */
export function confirmDialog({ title, message, confirmLabel, tone = "danger" }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = `confirm-title-${Date.now()}`;
    const cancel = h("button", { type: "button", class: "btn", value: "cancel" }, "Cancel");
    const confirm = h("button", { type: "button", class: `btn btn-${tone}`, "data-testid": "confirm-button" }, confirmLabel);
    const dialog = h(
      "dialog",
      { class: "dialog dialog-small", "aria-labelledby": titleId, "data-testid": "confirm-dialog" },
      h("h2", { id: titleId, class: "dialog-title" }, title),
      h("p", { class: "dialog-text" }, message),
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    let answer = false;
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    // The safe choice has focus, so a stray Enter does not delete anything.
    cancel.focus();
  });
}

/**
 * Run `action` while the button shows `busyLabel`. The button stays focusable (aria-disabled, not
 * disabled) so keyboard focus is not thrown to the page body; clicks while busy are ignored.
 */
export async function withBusy(button, busyLabel, action) {
  if (button.dataset.busy) return undefined;
  const label = button.querySelector(".btn-label") || button;
  const original = label.textContent;
  button.dataset.busy = "true";
  button.setAttribute("aria-disabled", "true");
  button.setAttribute("aria-busy", "true");
  label.textContent = busyLabel;
  try {
    return await action();
  } finally {
    delete button.dataset.busy;
    button.removeAttribute("aria-disabled");
    button.removeAttribute("aria-busy");
    label.textContent = original;
  }
}

/** Copy text to the clipboard; falls back to a selected textarea and execCommand where the API is missing. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused or document not focused: try the old way.
    }
  }
  const active = document.activeElement;
  const area = h("textarea", { class: "offscreen", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  if (active instanceof HTMLElement) active.focus();
  return copied;
}
