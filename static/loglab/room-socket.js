// The room's websocket, and the one rule every page follows for its events.
//
// Events are hints, numbered per room by `seq`; the state lives in the database. So:
// - the event numbered last+1 is applied by the page;
// - an event numbered last or lower is already in the state the page holds: a duplicate (the
//   server's replay overlapping the live stream) is dropped; one a fetch folded in before the
//   page ever saw it goes to `folded`, never to `apply`;
// - a gap, or a `resync` event, makes the page fetch the state again. Events arriving
//   meanwhile wait, then go through the same rule, so the ones the fresh state contains drop.
// A reconnect asks for what it missed (`?since=<seq>`): the server replays it, or sends
// `resync` when it is too much. Pages say how to apply an event and how to fetch the state;
// only this module counts. Importing it installs nothing: a page entry makes a RoomSocket.

// The event types, from the JSON base.html renders out of messaging/events.py: a page names
// EVENT.RECORDS_PRODUCED, and a name the server no longer declares throws at once instead of
// silently never matching.
function declaredTypes() {
  const script = document.getElementById("loglab-event-types");
  if (!script) throw new Error("room-socket.js: this page has no #loglab-event-types (base.html renders it)");
  const types = Object.create(null);
  for (const [name, { constant }] of Object.entries(JSON.parse(script.textContent))) types[constant] = name;
  return Object.freeze(types);
}

export const EVENT = new Proxy(declaredTypes(), {
  get(types, name) {
    if (typeof name === "symbol" || name in types) return types[name];
    throw new Error(`EVENT.${String(name)} is not a room event type: declare it in messaging/events.py`);
  },
});

// The server closes with this when the room is gone: retrying would only knock forever.
const CLOSE_ROOM_NOT_FOUND = 4404;
const RETRY_FIRST_MS = 500;
const RETRY_CAP_MS = 10_000;

// Half fixed, half random: after a server restart, two hundred phones must not all knock in
// the same instant, and none waits longer than the cap.
function backoff(attempt) {
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The topbar's connection badge, on every page that follows a room.
export function setStatus(state, text) {
  const el = document.getElementById("live-status");
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

export class RoomSocket {
  // seq: the seq of the state the page was rendered with.
  // apply(event): the page applies the next event.
  // resync(): the page fetches the state again and shows it; resolves to that state's seq
  //   (a fragment carries it, e.g. data-seq); a rejection is retried, backing off.
  // folded(event): optional; an event the fetched state contains but the page never saw. What
  //   the state does not show is the page's to act on: an animation, the instructor's
  //   follow-me (a navigation), controls outside the fetched fragment.
  // perFrame: events are handled once per animation frame, then afterBatch() once: the board
  //   writes the DOM for a whole frame's events before it measures anything.
  constructor(room, { seq, apply, resync, folded = () => {}, perFrame = false, afterBatch = () => {} }) {
    this.room = room;
    // The state the page shows contains every event up to `seq`; it has been handed every
    // event up to `handed` (applied, or reported folded), so a later copy is a duplicate.
    this.seq = Number(seq) || 0;
    this.handed = this.seq;
    this.page = { apply, resync, folded, afterBatch };
    this.perFrame = perFrame;
    this.pending = [];
    this.scheduled = false;
    this.resyncing = null;
    this.floor = 0;
    this.attempt = 0;
    this.gone = false;
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/ws/rooms/${encodeURIComponent(this.room)}/?since=${this.seq}`;
    const socket = new WebSocket(url);
    this.ws = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      setStatus("live", "live");
    });
    socket.addEventListener("message", (e) => {
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return; // not an event of ours
      }
      this.receive(event);
    });
    socket.addEventListener("close", (e) => {
      if (e.code === CLOSE_ROOM_NOT_FOUND) {
        this.gone = true;
        setStatus("offline", "this room no longer exists");
        return;
      }
      setStatus("offline", "reconnecting…");
      setTimeout(() => this.open(), backoff(this.attempt++));
    });
  }

  // Public so that tests (and the console) can feed events without a server.
  receive(event) {
    if (!event || typeof event !== "object") return;
    this.pending.push(event);
    this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.drain();
    };
    if (this.perFrame) requestAnimationFrame(run);
    else queueMicrotask(run);
  }

  drain() {
    // While a fetch is under way, checked per event: applying one may start a fetch.
    while (this.pending.length && !this.resyncing) {
      const event = this.pending.shift();
      if (typeof event.seq !== "number") continue; // not a room event (an error message)
      if (event.seq <= this.seq) {
        if (event.seq > this.handed) {
          this.handed = event.seq;
          this.page.folded(event);
        }
        continue;
      }
      if (event.type === EVENT.RESYNC) {
        this.resync(event.seq);
        continue;
      }
      if (event.seq !== this.seq + 1) {
        // Kept: the fresh state probably contains it, and then the page still sees it.
        this.pending.unshift(event);
        this.resync();
        continue;
      }
      this.seq = event.seq;
      this.handed = event.seq;
      this.page.apply(event);
    }
    this.page.afterBatch();
  }

  // Fetch the state again. A page calls it too, when an event says more than it can draw;
  // calls during a fetch share it. `floor`: a seq the fresh state is known to contain.
  resync(floor = 0) {
    this.floor = Math.max(this.floor, floor);
    if (!this.resyncing) this.resyncing = this.refetch();
    return this.resyncing;
  }

  // Whether a held event is still beyond a gap after the fetch.
  stillBehind() {
    const ahead = this.pending.filter((event) => typeof event.seq === "number" && event.seq > this.seq);
    if (!ahead.length || ahead.some((event) => event.type === EVENT.RESYNC)) return false;
    return Math.min(...ahead.map((event) => event.seq)) !== this.seq + 1;
  }

  async refetch() {
    for (let attempt = 0; ; attempt++) {
      try {
        const seq = Number(await this.page.resync());
        if (!Number.isFinite(seq)) throw new Error("the fetched state carries no seq");
        this.seq = Math.max(this.seq, seq, this.floor);
        if (!this.stillBehind()) break;
        // An event we hold is newer than the state the server gave (a lagging read): asking
        // again at once would hammer it, so ask again a little later.
        await wait(backoff(attempt));
      } catch (error) {
        // A room that no longer exists has no state to fetch: its events stay held for good.
        if (this.gone) return;
        // Held events cannot be applied without a base: keep them and try again, gently.
        console.warn("LogLab: could not fetch the room's state", error);
        setStatus("offline", "could not refresh; retrying…");
        await wait(backoff(attempt));
      }
    }
    this.floor = 0;
    this.resyncing = null;
    if (this.ws?.readyState === WebSocket.OPEN) setStatus("live", "live");
    this.schedule();
  }
}
