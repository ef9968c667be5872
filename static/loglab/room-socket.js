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
const RETRY_FIRST_MS = 1000;
// The cap bounds how long a page stays behind once the server is back: at most this much
// after it answers again (a restart's 200 phones still arrive spread over it).
const RETRY_CAP_MS = 5000;
// A socket must stay open this long before the backoff starts again from the first step: a
// server that accepts and then closes at once (its Redis is away) must not be knocked on
// several times a second by every page.
const STABLE_MS = 5000;
const RETRY_FLOOR_MS = 100;
// Back from a longer absence than this (a phone asleep, a tab in the background), the socket
// may be dead without knowing it: open a fresh one, which replays what was missed.
const AWAY_MS = 20_000;
// Coming back online or waking is spread over this much, as two hundred phones on one Wi-Fi
// come back together.
const WAKE_SPREAD_MS = 1000;
// Timers stop while a phone sleeps: a tick arriving this much late means it slept.
const TICK_MS = 5000;
// How long after coming back the page still counts what it learns as news of its absence.
const BACK_MS = 15_000;

// Random over the whole window ("full jitter"), the first retry too: after a server restart
// two hundred phones must not all knock in the same instant, and none waits past the cap.
function backoff(attempt) {
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** attempt);
  return RETRY_FLOOR_MS + Math.random() * (ceiling - RETRY_FLOOR_MS);
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
    this.retry = null;
    this.hiddenAt = null;
    // Whether the page was away (asleep, hidden long, offline) since it last had a live
    // socket: a page reads it to explain what changed meanwhile.
    this.wasAway = false;
    this.backAt = null;
    this.open();
    this.watchWake();
  }

  open() {
    if (this.gone) return;
    clearTimeout(this.retry);
    this.retry = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/ws/rooms/${encodeURIComponent(this.room)}/?since=${this.seq}`;
    const socket = new WebSocket(url);
    this.ws = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.ws) return;
      clearTimeout(this.stable);
      this.stable = setTimeout(() => {
        if (socket === this.ws) this.attempt = 0;
      }, STABLE_MS);
      if (this.wasAway) this.backAt = Date.now();
      this.wasAway = false;
      setStatus("live", "live");
    });
    socket.addEventListener("message", (e) => {
      if (socket !== this.ws) return;
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return; // not an event of ours
      }
      this.receive(event);
    });
    socket.addEventListener("close", (e) => {
      if (socket !== this.ws) return; // one we replaced on purpose
      clearTimeout(this.stable);
      if (e.code === CLOSE_ROOM_NOT_FOUND) {
        this.gone = true;
        setStatus("offline", "this room no longer exists");
        return;
      }
      // Whatever closed it (the server's limits, a restart, Redis, the network), the page
      // reconnects and catches up; until then it is away.
      this.wasAway = true;
      setStatus("offline", "reconnecting…");
      this.retry = setTimeout(() => this.open(), backoff(this.attempt++));
    });
  }

  // Whether the page is away, or came back in the last few seconds (its catching up is still
  // arriving): what changed meanwhile happened while nobody was looking.
  recentlyAway() {
    return this.wasAway || (this.backAt !== null && Date.now() - this.backAt < BACK_MS);
  }

  // A fresh socket after a short random wait: the old one is dropped without reconnecting.
  reconnect(delay) {
    if (this.gone) return;
    const old = this.ws;
    this.ws = null;
    if (old && old.readyState <= WebSocket.OPEN) old.close(1000);
    clearTimeout(this.retry);
    setStatus("offline", "reconnecting…");
    this.retry = setTimeout(() => this.open(), delay);
  }

  // A phone that slept or lost its network comes back: its socket may be dead without a close
  // event yet, and the page may show minutes-old state. Reconnect (the server replays what was
  // missed, or says to resync); after a short absence, ask for a replay on the open socket.
  wake(away) {
    if (this.gone) return;
    const ws = this.ws;
    if (!away && ws?.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "replay", since: this.seq }));
      return;
    }
    this.wasAway = true;
    this.reconnect(Math.random() * WAKE_SPREAD_MS);
  }

  watchWake() {
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") {
        this.hiddenAt = Date.now();
        return;
      }
      const away = this.hiddenAt !== null && Date.now() - this.hiddenAt > AWAY_MS;
      this.hiddenAt = null;
      this.wake(away);
    });
    // Restored from the back-forward cache: its socket was closed when it was stored.
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) this.wake(true);
    });
    window.addEventListener("online", () => this.wake(true));
    window.addEventListener("offline", () => {
      this.wasAway = true;
    });
    let last = Date.now();
    setInterval(() => {
      const now = Date.now();
      if (now - last > AWAY_MS) this.wake(true);
      last = now;
    }, TICK_MS);
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
