// LogLab board: events in, animation out.
//
// Events from the room's websocket are hints numbered by `seq`. They are queued and applied on
// the next animation frame; a gap in the numbers (a lost hint) or a reconnect makes the board
// fetch the current state from the server instead of guessing. User data (keys, values) only
// ever enters the page through textContent or attributes, never as HTML.

const board = document.getElementById("board");
const statusEl = document.getElementById("live-status");

// A key's colour, so "same key, same partition, in order" shows at a glance. The key's text
// is always drawn too: colour is never the only signal. Hues are spread apart so that
// neighbouring keys do not look alike on a washed-out projector.
const HUES = [210, 35, 145, 330, 265, 5, 185, 55, 100, 290, 20, 160];
export function keyHue(key) {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return HUES[(h >>> 0) % HUES.length];
}

function paintKeys(root) {
  for (const cell of root.querySelectorAll(".cell[data-key]")) {
    cell.style.setProperty("--key-hue", String(keyHue(cell.dataset.key)));
  }
}

function setStatus(state, text) {
  if (!statusEl) return;
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

class Board {
  constructor(root) {
    this.root = root;
    this.room = root.dataset.room;
    this.topicsUrl = root.dataset.topicsUrl;
    this.seq = Number(document.getElementById("topics")?.dataset.seq ?? 0);
    this.queue = [];
    this.frameRequested = false;
    this.resyncing = false;
    this.held = [];
    this.retryMs = 500;
    paintKeys(root);
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/ws/rooms/${encodeURIComponent(this.room)}/?since=${this.seq}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.retryMs = 500;
      setStatus("live", "live");
    });
    socket.addEventListener("message", (e) => this.enqueue(JSON.parse(e.data)));
    socket.addEventListener("close", (e) => {
      if (e.code === 4404) {
        setStatus("offline", "this room no longer exists");
        return;
      }
      setStatus("offline", "reconnecting…");
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    });
  }

  enqueue(event) {
    this.queue.push(event);
    if (!this.frameRequested) {
      this.frameRequested = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    this.frameRequested = false;
    const events = this.queue.splice(0);
    if (this.resyncing) {
      // Kept until the fresh state is in: then the ones it already contains are dropped.
      this.held.push(...events);
      return;
    }
    for (const event of events) {
      if (event.type === "resync") {
        this.resync(event.seq);
        continue;
      }
      if (typeof event.seq !== "number") continue;
      if (event.seq <= this.seq) continue; // seen already (replay overlap)
      if (event.seq !== this.seq + 1) {
        this.resync();
        return;
      }
      this.seq = event.seq;
      this.apply(event);
    }
  }

  apply(event) {
    switch (event.type) {
      case "records.produced":
        this.recordsProduced(event.payload);
        break;
      default:
        // Anything the board cannot patch in place is redrawn from the server.
        this.resync();
    }
    this.root.dispatchEvent(new CustomEvent("loglab:event", { detail: event }));
  }

  recordsProduced({ topic, records }) {
    const template = document.getElementById("cell-template");
    for (const r of records) {
      const row = this.root.querySelector(
        `.partition[data-topic="${CSS.escape(topic)}"][data-partition="${r.partition}"]`
      );
      if (!row) {
        this.resync();
        return;
      }
      const cells = row.querySelector(".cells");
      const next = cells.querySelector(".cell-next");
      const cell = template.content.firstElementChild.cloneNode(true);
      cell.dataset.topic = topic;
      cell.dataset.partition = String(r.partition);
      cell.dataset.offset = String(r.offset);
      if (r.key !== null) {
        cell.dataset.key = r.key;
        cell.style.setProperty("--key-hue", String(keyHue(r.key)));
      }
      cell.querySelector(".cell-offset").textContent = String(r.offset);
      cell.querySelector(".cell-key").textContent = r.key === null ? "∅" : r.key;
      cell.title = `offset ${r.offset} · key ${r.key ?? "null"} · ${r.value ?? "(tombstone)"}`;
      cells.insertBefore(cell, next);
      next.querySelector(".cell-offset").textContent = String(r.offset + 1);
      row.dataset.logEnd = String(r.offset + 1);
      row.querySelector(".leo b").textContent = String(r.offset + 1);
      cells.scrollLeft = cells.scrollWidth;
    }
  }

  async resync(seq) {
    if (this.resyncing) return;
    this.resyncing = true;
    try {
      const response = await fetch(this.topicsUrl, { headers: { "HX-Request": "true" } });
      if (!response.ok) return;
      const html = await response.text();
      // The fragment is server-rendered, autoescaped template output.
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.getElementById("topics");
      const current = document.getElementById("topics");
      if (fresh && current) {
        current.replaceWith(fresh);
        paintKeys(fresh);
        this.seq = Math.max(Number(fresh.dataset.seq), seq ?? 0);
        this.refreshTopicChoices(fresh);
      }
    } finally {
      this.resyncing = false;
      for (const event of this.held.splice(0)) this.enqueue(event);
    }
  }

  refreshTopicChoices(topics) {
    const select = this.root.querySelector(".produce-form select[name=topic]");
    if (!select) return;
    const chosen = select.value;
    const names = [...topics.querySelectorAll("section.topic")].map((s) => s.dataset.topic);
    select.replaceChildren(
      ...names.map((name) => {
        const option = document.createElement("option");
        option.textContent = name;
        option.selected = name === chosen;
        return option;
      })
    );
  }
}

if (board) {
  window.loglab = new Board(board);
}
