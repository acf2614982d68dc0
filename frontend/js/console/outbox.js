// The emails the local runtime sent (it delivers none): newest first, refreshed while on screen.

import { h, icon, setText } from "../dom.js";
import { PolledView } from "./poller.js";
import { formatMoment } from "./status.js";

const REFRESH_MS = 3000;

export class OutboxView extends PolledView {
  constructor(api, navigate) {
    super(REFRESH_MS);
    this.api = api;
    this.navigate = navigate;
    this.signature = "";
    document.title = "Outbox · filepipe console";
    this.el = this.build();
  }

  build() {
    this.headingEl = h("h1", { id: "outbox-heading", tabindex: "-1" }, "Outbox");
    this.countEl = h("span", { class: "count", "data-testid": "outbox-count" });
    this.errorEl = h("p", { class: "banner tone-danger", role: "alert", hidden: true });
    this.listEl = h("ul", { class: "mail-list", "data-testid": "outbox-list" });
    this.emptyEl = h("div", { class: "empty", hidden: true }, icon("info", "icon icon-hero"), h("p", { class: "empty-title" }, "No emails yet"), h("p", {}, "The owner is told by email when a file is ready, rejected or quarantined."));
    this.updatedEl = h("p", { class: "refresh-note" });
    return h(
      "section",
      { class: "console-section", "aria-labelledby": "outbox-heading" },
      h("div", { class: "page-head" }, this.headingEl, this.countEl),
      h("p", { class: "lead" }, "Every email the workflow sent through SES on this machine. Nothing leaves it."),
      this.errorEl,
      this.listEl,
      this.emptyEl,
      this.updatedEl,
    );
  }

  async refresh() {
    const data = await this.readShown(() => this.api.outbox(), (error) => `Couldn't read the outbox: ${error.message}`);
    setText(this.countEl, String(data.total));
    setText(this.updatedEl, `Updated ${formatMoment(new Date())}; refreshes every ${REFRESH_MS / 1000} s.`);
    this.emptyEl.hidden = data.items.length > 0;
    const signature = data.items.map((item) => item.id).join(",");
    if (signature === this.signature) return;
    this.signature = signature;
    this.listEl.replaceChildren(
      ...data.items.map((mail, index) => {
        const headingId = `mail-${index}`;
        return h(
          "li",
          { class: "panel mail", "data-testid": "outbox-mail" },
          h(
            "article",
            { "aria-labelledby": headingId },
            h("h2", { id: headingId, class: "mail-subject" }, mail.subject || "(no subject)"),
            h(
              "dl",
              { class: "mail-headers" },
              h("div", {}, h("dt", {}, "To"), h("dd", {}, (mail.to || []).join(", ") || "–")),
              h("div", {}, h("dt", {}, "From"), h("dd", {}, mail.from || "–")),
            ),
            h("pre", { class: "mail-body", tabindex: "0", "aria-label": `Body of ${mail.subject || "the email"}` }, mail.body || ""),
          ),
        );
      }),
    );
  }
}
