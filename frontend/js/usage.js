// The "2.1 of 5 GB used" line: the caller's stored and in-flight bytes against the per-user quota.

import { h, setText } from "./dom.js";
import { formatBytes } from "./format.js";

/** "2.1 of 5 GB used", or with a unit each when they differ: "340 KB of 5 GB used" (units as file sizes). */
export function usageSentence(usedBytes, quotaBytes) {
  const quota = formatBytes(quotaBytes);
  const used = formatBytes(usedBytes);
  const unit = quota.slice(quota.indexOf(" "));
  const sameUnit = usedBytes === 0 || used.endsWith(unit);
  return `${sameUnit ? used.split(" ")[0] : used} of ${quota} used`;
}

export class UsageLine {
  constructor(api) {
    this.api = api;
    this.el = h("p", { class: "count usage", "data-testid": "usage", hidden: true });
    this.inflight = null;
  }

  /** Quietly: the line is a hint, so a failed look-up keeps the last one and the next refresh tries again. */
  refresh() {
    if (this.inflight) return this.inflight;
    this.inflight = this.api
      .getUsage()
      .then((usage) => {
        const parts = [usageSentence(usage.usedBytes, usage.quotaBytes)];
        if (usage.uploadsThisHour >= usage.uploadsPerHour) {
          parts.push(`hourly upload limit of ${usage.uploadsPerHour} reached`);
        }
        setText(this.el, parts.join(" · "));
        this.el.hidden = false;
      })
      .catch(() => {})
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }
}
