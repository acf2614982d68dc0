// Starts the page: reads config.json, then shows a share or request page, the sign-in card or the files.

import { Api } from "./js/api.js";
import { Auth } from "./js/auth.js";
import { renderAuth } from "./js/authview.js";
import { loadConfig } from "./js/config.js";
import { h, icon, replaceChildren } from "./js/dom.js";
import { FilesView } from "./js/files.js";
import { browserStorage, UnfinishedUploads } from "./js/resume.js";
import { renderRequestPage, requestTokenFromPath } from "./js/requestpage.js";
import { renderSharePage, shareTokenFromPath } from "./js/sharepage.js";
import { announce, confirmDialog } from "./js/ui.js";
import { Uploader } from "./js/upload.js";

const view = document.getElementById("view");
const account = document.getElementById("account");

function renderFatal(message) {
  document.title = "filepipe is unavailable";
  replaceChildren(
    view,
    h(
      "section",
      { class: "auth-card", role: "alert", "aria-labelledby": "fatal-heading" },
      icon("alert", "icon icon-hero"),
      h("h1", { id: "fatal-heading" }, "filepipe can't start"),
      h("p", {}, message),
      h("p", { class: "hint" }, "Reload the page to try again."),
    ),
  );
}

function renderAccount(auth, uploader) {
  if (!auth.signedIn) {
    account.replaceChildren();
    return;
  }
  const signOut = h("button", { type: "button", class: "btn btn-small btn-ghost", "data-testid": "sign-out" }, icon("logout"), h("span", { class: "btn-label" }, "Sign out"));
  signOut.addEventListener("click", async () => {
    if (uploader.busy) {
      const confirmed = await confirmDialog({
        title: "Sign out and cancel uploads?",
        message: "Files still uploading will be cancelled. Files already uploaded keep processing.",
        confirmLabel: "Cancel uploads and sign out",
      });
      if (!confirmed) return;
    }
    await uploader.cancelAll();
    auth.signOut();
    announce("Signed out");
  });
  replaceChildren(account, h("span", { class: "account-email", title: auth.email, "data-testid": "account-email" }, auth.email), signOut);
}

async function main() {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    renderFatal(error.message);
    return;
  }

  const token = shareTokenFromPath(window.location.pathname);
  if (token !== null) {
    document.body.classList.add("is-share");
    await renderSharePage(view, config, token);
    return;
  }
  const requestToken = requestTokenFromPath(window.location.pathname);
  if (requestToken !== null) {
    document.body.classList.add("is-share");
    await renderRequestPage(view, config, requestToken);
    return;
  }

  const auth = new Auth(config);
  const api = new Api(config.apiUrl, auth);
  const uploader = new Uploader(api, { maxFileBytes: config.maxFileBytes, allowedTypes: config.allowedTypes });
  let filesView = null;

  const show = (reason = "", moveFocus = false) => {
    filesView?.stop();
    filesView = null;
    renderAccount(auth, uploader);
    if (auth.signedIn) {
      document.title = "Your files · filepipe";
      uploader.unfinished = new UnfinishedUploads(browserStorage(), auth.email);
      filesView = new FilesView({ api, uploader, limits: uploader.limits });
      replaceChildren(view, filesView.el);
      filesView.start();
      if (moveFocus) document.getElementById("files-heading")?.focus();
    } else {
      uploader.cancelAll();
      document.title = "Sign in · filepipe";
      renderAuth(view, auth, config, reason);
    }
  };

  auth.addEventListener("change", (event) => show(event.detail.reason, true));
  window.addEventListener("beforeunload", (event) => {
    // Leaving mid-upload stops the transfer (a large one can be resumed later); the browser asks first.
    if (uploader.busy) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  show();
}

main();
