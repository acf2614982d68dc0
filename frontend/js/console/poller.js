// Runs a refresh now and then again every `interval` ms after each one ends; pauses while the tab is hidden.

import { setText } from "../dom.js";

export class Poller {
  constructor(refresh, interval) {
    this.refresh = refresh;
    this.interval = interval;
    this.timer = null;
    this.running = false;
    this.active = false;
    this.again = false;
    this.onVisibility = () => {
      if (!document.hidden && this.active && !this.running && this.timer === null) this.tick();
    };
  }

  start() {
    this.active = true;
    document.addEventListener("visibilitychange", this.onVisibility);
    this.tick();
  }

  stop() {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = null;
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  /** Refresh at once (after an action), without waiting for the next tick. */
  now() {
    if (!this.active) return Promise.resolve();
    clearTimeout(this.timer);
    this.timer = null;
    return this.tick();
  }

  async tick() {
    if (!this.active) return;
    if (this.running) {
      // Asked again mid-refresh: that answer may predate the action, so one more follows at once.
      this.again = true;
      return;
    }
    this.running = true;
    try {
      await this.refresh();
    } catch {
      // The view shows its own errors; polling carries on.
    } finally {
      this.running = false;
    }
    const delay = this.again ? 0 : this.interval;
    this.again = false;
    if (this.active && !document.hidden) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.tick();
      }, delay);
    }
  }
}

/** A console page kept fresh by a Poller while it is on screen (subclasses define `refresh()`). */
export class PolledView {
  constructor(interval) {
    this.poller = new Poller(() => this.refresh(), interval);
  }

  heading() {
    return this.headingEl;
  }

  start() {
    this.poller.start();
  }

  stop() {
    this.poller.stop();
  }

  /** What `read()` answers; a failure is shown in `errorEl` as `describe(error)`, then thrown again. */
  async readShown(read, describe, errorEl = this.errorEl) {
    try {
      const data = await read();
      errorEl.hidden = true;
      return data;
    } catch (error) {
      errorEl.hidden = false;
      setText(errorEl, describe(error));
      throw error;
    }
  }
}
