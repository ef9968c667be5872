// A student's page. While it is open, its websocket keeps the student's consumer in its group
// (the server heartbeats for connected students only); closing it starts the session timeout.
// The student's part of the page (#me) is redrawn from the server when something that concerns
// them happens: their group rebalanced, records arrived in their partitions, the instructor
// changed the locks, reset the room or removed them. User data enters only as server-rendered,
// autoescaped HTML or through textContent.
import { RoomSocket, keyHue } from "./board.js";
import { followRoom } from "./follow-room.js";

const root = document.getElementById("student");
// Records arriving or being processed redraw at most this often: a busy room must not make
// two hundred phones refetch ten times a second.
const SOON_MS = 1000;

function me() {
  return document.getElementById("me");
}

function paint(el) {
  for (const chip of el.querySelectorAll(".key-chip[data-key]")) {
    chip.style.setProperty("--key-hue", String(keyHue(chip.dataset.key)));
  }
  for (const g of el.querySelectorAll("[data-group]")) {
    g.style.setProperty("--group-hue", String(keyHue(g.dataset.group)));
  }
}

// "now": redraw at the next frame; "soon": within SOON_MS; null: not about this student.
function urgency(event, current) {
  const type = String(event.type ?? "");
  const p = event.payload || {};
  if (type === "room.follow") return null;
  if (type === "resync" || type.startsWith("room.") || type.startsWith("student.") || type.startsWith("lesson.")) return "now";
  const group = current.dataset.group;
  if (!group) return type.startsWith("group.") ? "now" : null;
  if (["group.changed", "group.deleted", "member.crashed", "member.changed", "offsets.reset", "offset.committed"].includes(type)) {
    return p.group === group ? "now" : null;
  }
  const mine = new Set(current.dataset.topics.split(" ").filter(Boolean));
  const touches = (batch) => (batch.records || []).some((r) => mine.has(`${batch.topic}-${r.partition}`));
  if (type === "step") {
    if (p.student && p.student === current.dataset.member) return null; // our own click: drawn already
    // Another member's work on its own partitions changes nothing here: only what names one
    // of ours (with 200 phones in a group, a refetch each per step would be 200 page loads).
    const part = (p.groups || []).find((g) => g.group === group);
    const named = part ? [
      ...(part.processed || []).map((r) => r.tp), ...(part.commits || []).map((c) => c.tp),
      ...(part.starts || []).map((s) => s.tp), ...Object.keys(part.positions || {}),
    ] : [];
    if (named.some((tp) => mine.has(tp))) return "soon";
    return (p.produced || []).some(touches) ? "soon" : null;
  }
  if (type === "records.produced") return touches(p) ? "soon" : null;
  if (type === "records.deleted") return mine.has(`${p.topic}-${p.partition}`) ? "soon" : null;
  return null;
}

class StudentPage {
  constructor(el) {
    this.root = el;
    this.seq = Number(el.dataset.seq);
    this.simNow = Number(el.dataset.now);
    this.timer = null;
    this.lastRefresh = 0;
    this.fetching = false;
    this.again = false;
    this.stopped = false;
    paint(document);
    this.updateCountdowns();
    this.socket = new RoomSocket(el.dataset.room, {
      since: () => this.seq,
      onEvent: (event) => this.receive(event),
    });
  }

  receive(event) {
    if (typeof event.seq === "number") this.seq = Math.max(this.seq, event.seq);
    followRoom(event);
    const clock = event.type === "step" ? event.payload?.clock : event.type === "clock.changed" ? event.payload : null;
    if (clock && typeof clock.now_ms === "number") {
      this.simNow = clock.now_ms;
      this.updateCountdowns();
    }
    const current = me();
    if (this.stopped || !current) return;
    if (String(event.type ?? "").startsWith("lesson.") && document.getElementById("lesson-follow")) {
      // The lesson panel reloads itself on this (hx-trigger "loglab:lesson from:body").
      document.body.dispatchEvent(new CustomEvent("loglab:lesson"));
      return;
    }
    const when = urgency(event, current);
    // The instructor's changes (locks, reset, lessons) redraw the produce form and the lesson
    // too, not only the consumer.
    const type = String(event.type ?? "");
    const wholePage = ["room.", "student.", "lesson."].some((prefix) => type.startsWith(prefix));
    if (when) this.schedule(when === "now" ? 0 : SOON_MS, wholePage);
  }

  schedule(within, wholePage) {
    this.wholePage = this.wholePage || wholePage;
    const due = Math.max(0, this.lastRefresh + within - performance.now());
    if (this.timer !== null && within > 0) return; // one is coming anyway
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, within === 0 ? 0 : due);
  }

  async refresh() {
    // Never swap the buttons from under a tap: wait for the student's own request to land.
    if (this.fetching || document.querySelector("#me .htmx-request, #me.htmx-request")) {
      this.again = true;
      setTimeout(() => this.drain(), 150);
      return;
    }
    this.fetching = true;
    this.lastRefresh = performance.now();
    const wholePage = this.wholePage;
    this.wholePage = false;
    try {
      const headers = wholePage ? {} : { "HX-Request": "true" };
      const response = await fetch(this.root.dataset.meUrl, { headers });
      if (!response.ok && response.status !== 403) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const id of wholePage ? ["me", "produce", "lesson-follow-slot"] : ["me"]) {
        const fresh = doc.getElementById(id);
        const current = document.getElementById(id);
        if (!fresh || !current || sameContent(current, fresh)) continue;
        current.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
        paint(fresh);
      }
      this.updateCountdowns();
      produceTopicFollow();
      if (me()?.dataset.removed) {
        this.stopped = true;
        document.getElementById("produce")?.remove();
      }
    } finally {
      this.fetching = false;
    }
  }

  drain() {
    if (!this.again) return;
    this.again = false;
    this.refresh();
  }

  updateCountdowns() {
    for (const el of document.querySelectorAll("#student .countdown[data-deadline]")) {
      const left = Math.max(0, Math.ceil((Number(el.dataset.deadline) - this.simNow) / 1000));
      el.textContent = `in ${left} s`;
    }
  }
}

// A redraw that changes nothing is skipped: it would only swap the button under a finger (the
// page's own answer to a tap and the event that tap caused bring the same fragment) and wipe
// the answer's message ("Slow down…", "Committed…"), which a plain redraw does not carry.
function sameContent(current, fresh) {
  paint(fresh); // as the page would: the key and group colours are set in the browser
  const bare = (el) => {
    const copy = el.cloneNode(true);
    copy
      .querySelectorAll("input[name=csrfmiddlewaretoken], .form-result")
      .forEach((node) => node.remove());
    return copy.outerHTML.replace(/>\s+</g, "><").replace(/\s+/g, " ");
  };
  return bare(current) === bare(fresh);
}

// Once the student joins a group, the produce form offers its topic, unless they chose one.
function produceTopicFollow() {
  const select = document.querySelector("#produce select[name=topic]");
  const topics = (me()?.dataset.groupTopics || "").split(" ").filter(Boolean);
  if (!select || select.dataset.chosen || !topics.length || topics.includes(select.value)) return;
  const option = [...select.options].find((o) => o.value === topics[0]);
  if (option) select.value = option.value;
}

if (root) {
  window.loglabStudent = new StudentPage(root);
  // The student's own actions swap #me in through htmx: colour what arrived.
  document.body.addEventListener("htmx:afterSwap", (e) => {
    paint(e.target);
    window.loglabStudent.updateCountdowns();
    produceTopicFollow();
  });
  document.body.addEventListener("change", (e) => {
    if (e.target.matches("#produce select[name=topic]")) e.target.dataset.chosen = "1";
  });
}
