// Entry of the queues page (queues.html): the SQS FIFO and classic-broker views, and
// side-by-side mode. Exports nothing.
//
// The page is rendered by the server; the room's websocket only says *that* something changed.
// On an SQS, classic-broker or records event this module refetches the live fragment, at most
// once per animation frame and one fetch at a time, and swaps it in; room-socket.js decides
// when the page must catch up instead (a gap, a resync), and the same fragment, carrying its
// seq, is how it does. Countdowns of in-flight messages tick locally on the room's simulated
// clock. User data only enters the page as the server's autoescaped HTML or through textContent.
import { copyOnClick } from "./copy.js";
import { applyLocks, followRoom } from "./follow-room.js";
import { paintKeys } from "./keys.js";
import { EVENT, RoomSocket, setStatus } from "./room-socket.js";
import { formatSimTime } from "./sim-time.js";

const root = document.getElementById("queues-board");
const clockEl = document.getElementById("sim-clock");
const clockStateEl = document.getElementById("sim-clock-state");
const EDITABLE = "input:not([type=hidden]), select, textarea";

// What the queues page draws; side by side also draws the Kafka topic (see matters()).
const QUEUE_EVENTS = new Set([EVENT.SQS_CHANGED, EVENT.CLASSIC_CHANGED, EVENT.RECORDS_PRODUCED, EVENT.RECORDS_DELETED]);
const TOPIC_EVENTS = new Set([EVENT.TOPIC_CREATED, EVENT.TOPIC_PARTITIONS_ADDED, EVENT.TOPIC_CONFIGURED]);

// The room's simulated clock as last reported, advanced locally at its speed while it runs.
class SimClock {
  constructor() {
    this.base = 0;
    this.running = false;
    this.speed = 1;
    this.at = performance.now();
  }

  set({ now_ms, running, speed }) {
    if (Number.isFinite(Number(now_ms))) this.base = Number(now_ms);
    if (typeof running === "boolean") this.running = running;
    if (Number.isFinite(Number(speed)) && Number(speed) > 0) this.speed = Number(speed);
    this.at = performance.now();
  }

  now() {
    return this.running ? this.base + (performance.now() - this.at) * this.speed : this.base;
  }
}

class QueuesPage {
  constructor(element) {
    this.root = element;
    this.room = element.dataset.room;
    this.url = element.dataset.fragmentUrl;
    this.watchRecords = element.dataset.watchRecords === "true";
    // Pages built on this one name the events of their own that redraw them (data-events).
    this.extraEvents = new Set((element.dataset.events ?? "").split(/\s+/).filter(Boolean).map((name) => EVENT[name]));
    const live = document.getElementById("queues-live");
    this.clock = new SimClock();
    this.readClock(live);
    this.frameRequested = false;
    this.fetching = false;
    this.again = false;
    // Fetches of the fragment run one after another: an older answer never lands last.
    this.loads = Promise.resolve();
    this.deferred = null;
    this.dueSeen = new Set();
    paintKeys(document);
    this.tick();
    setInterval(() => this.tick(), 250);
    // Our own forms answer with HX-Trigger: redraw at once, whatever the socket does.
    document.addEventListener("loglab:queues-changed", () => this.refresh());
    document.addEventListener("focusout", () => {
      // A swap waits while someone types in the live area; it lands when they leave the field.
      if (this.deferred) setTimeout(() => this.applyDeferred(), 0);
    });
    this.socket = new RoomSocket(this.room, {
      seq: Number(live?.dataset.seq ?? 0),
      apply: (event) => this.apply(event),
      resync: () => this.resync(),
      // Follow-me is a move to make, not something the fetched fragment shows.
      folded: (event) => followRoom(event),
    });
  }

  readClock(live) {
    if (!live) return;
    this.clock.set({
      now_ms: live.dataset.nowMs,
      running: live.dataset.running === "true",
      speed: live.dataset.speed,
    });
  }

  apply(event) {
    if (followRoom(event)) return;
    // A student's page redraws its forms when the instructor locks or unlocks something.
    if (applyLocks(event) || event.type === EVENT.ROOM_RESET) {
      this.refresh();
      return;
    }
    const clock =
      event.type === EVENT.STEP ? event.payload?.clock : event.type === EVENT.CLOCK_CHANGED ? event.payload : null;
    if (clock) {
      this.clock.set(clock);
      this.tick();
    }
    if (this.matters(event)) this.refresh();
  }

  matters(event) {
    if (QUEUE_EVENTS.has(event.type) || this.extraEvents.has(event.type)) return true;
    if (!this.watchRecords) return false;
    // Side by side draws the Kafka topic too: records the room's producers made, new topics.
    return (event.type === EVENT.STEP && event.payload?.produced?.length > 0) || TOPIC_EVENTS.has(event.type);
  }

  // The same fragment as a refresh, awaited: its data-seq tells room-socket.js where the
  // page now stands. A failure rejects, and room-socket.js tries again.
  async resync() {
    const fresh = await this.load();
    if (!fresh) throw new Error(`${this.url} gave no live fragment`);
    this.swap(fresh);
    return Number(fresh.dataset.seq);
  }

  // The live fragment, or null when the server answered without one; rejects when offline.
  load() {
    const next = this.loads.then(async () => {
      const response = await fetch(this.url, { headers: { "HX-Request": "true" } });
      if (!response.ok) return null;
      // The fragment is server-rendered, autoescaped template output.
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("queues-live");
      return fresh ? document.adoptNode(fresh) : null;
    });
    this.loads = next.catch(() => {});
    return next;
  }

  refresh() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.fetchFragment();
    });
  }

  async fetchFragment() {
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = true;
    try {
      const fresh = await this.load();
      if (fresh) this.swap(fresh);
    } catch {
      setStatus("offline", "could not refresh; retrying…");
      setTimeout(() => this.refresh(), 1000);
    } finally {
      this.fetching = false;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    }
  }

  swap(fresh) {
    const current = document.getElementById("queues-live");
    if (!current) return;
    const active = document.activeElement;
    if (active && current.contains(active) && active.matches(EDITABLE)) {
      this.deferred = fresh;
      return;
    }
    this.deferred = null;
    const focus = this.focusMemo(current, active);
    const before = new Set([...current.querySelectorAll("[data-message-id]")].map((e) => e.dataset.messageId));
    current.replaceWith(fresh);
    // Its forms are htmx forms: without this they would post the old way and reload the page.
    window.htmx?.process(fresh);
    paintKeys(fresh);
    if (before.size) {
      for (const cell of fresh.querySelectorAll(".cell[data-message-id]")) {
        if (!before.has(cell.dataset.messageId)) cell.classList.add("cell-new");
      }
    }
    this.restoreFocus(fresh, focus);
    this.readClock(fresh);
    this.refreshChoices(fresh);
    this.tick();
  }

  applyDeferred() {
    const fresh = this.deferred;
    const active = document.activeElement;
    const current = document.getElementById("queues-live");
    if (!fresh || (active && current?.contains(active) && active.matches(EDITABLE))) return;
    this.swap(fresh);
  }

  // Keyboard users keep their place: the same control if it is still there, else the first
  // control of the same queue or consumer, else the live area itself.
  focusMemo(current, active) {
    if (!active || !current.contains(active)) return null;
    const container = active.closest("[data-consumer], [data-sqs-queue], [data-classic-queue]");
    let scope = null;
    if (container) {
      for (const name of ["consumer", "sqsQueue", "classicQueue"]) {
        if (container.dataset[name] !== undefined) {
          scope = { name, value: container.dataset[name] };
          break;
        }
      }
    }
    return { key: active.closest("[data-focus-key]")?.dataset.focusKey ?? null, scope };
  }

  restoreFocus(fresh, memo) {
    if (!memo) return;
    const attr = (name) => `data-${name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`;
    let target = null;
    if (memo.key) target = fresh.querySelector(`[data-focus-key="${CSS.escape(memo.key)}"]`);
    if (!target && memo.scope) {
      const box = fresh.querySelector(`[${attr(memo.scope.name)}="${CSS.escape(memo.scope.value)}"]`);
      target = box?.querySelector("button, [tabindex='0']") ?? null;
    }
    if (!target) {
      fresh.tabIndex = -1;
      target = fresh;
    }
    target.focus({ preventScroll: true });
  }

  refreshChoices(fresh) {
    const names = (selector, key) => [...fresh.querySelectorAll(selector)].map((e) => e.dataset[key]);
    const sources = {
      "sqs-queues": names("[data-sqs-queue]", "sqsQueue"),
      "classic-queues": names("[data-classic-queue]", "classicQueue"),
      "classic-exchanges": names("[data-classic-exchange]", "classicExchange"),
    };
    if (this.watchRecords) return; // side by side has no such selects
    for (const select of document.querySelectorAll("select[data-choices]")) {
      const wanted = [...new Set(sources[select.dataset.choices] ?? [])];
      const chosen = select.value;
      const options = wanted.map((name) => {
        const option = document.createElement("option");
        option.textContent = name;
        option.value = name;
        option.selected = name === chosen;
        return option;
      });
      if (select.dataset.choicesFirst !== undefined) {
        const first = document.createElement("option");
        first.value = select.dataset.choicesFirst;
        first.textContent = "(default)";
        first.selected = chosen === first.value;
        options.unshift(first);
      }
      select.replaceChildren(...options);
    }
    const list = document.getElementById("classic-queue-names");
    if (list) {
      list.replaceChildren(
        ...sources["classic-queues"].map((name) => {
          const option = document.createElement("option");
          option.value = name;
          return option;
        })
      );
    }
  }

  tick() {
    const now = this.clock.now();
    if (clockEl) {
      const text = formatSimTime(now);
      if (clockEl.textContent !== text) clockEl.textContent = text;
    }
    if (clockStateEl) {
      const state = this.clock.running ? `· ${Number(this.clock.speed.toFixed(2))}×` : "· paused";
      if (clockStateEl.textContent !== state) clockStateEl.textContent = state;
    }
    let newlyDue = false;
    for (const el of document.querySelectorAll("[data-deadline-ms]")) {
      const deadline = Number(el.dataset.deadlineMs);
      const left = Math.ceil((deadline - now) / 1000);
      const text = left > 0 ? `${left} s` : "due";
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("is-due", left <= 0);
      if (left <= 0 && this.clock.running && !this.dueSeen.has(deadline)) {
        this.dueSeen.add(deadline);
        newlyDue = true;
      }
    }
    // A visibility timeout ran out on the room's clock: redraw once, a moment later, so the
    // message shows back in its group even if no event said so.
    if (newlyDue) setTimeout(() => this.refresh(), 400);
  }
}

if (root) {
  window.loglabQueues = new QueuesPage(root);
  copyOnClick();
}
