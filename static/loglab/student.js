// Entry of a student's page (classroom_me.html). Exports nothing. While it is open, its
// websocket keeps the student's consumer in its group (the server heartbeats for connected
// students only); closing it starts the session timeout. The student's part of the page (#me)
// is redrawn from the server when something that concerns them happens: their group
// rebalanced, records arrived in their partitions, the instructor changed the locks, reset the
// room or removed them. When the page must catch up (room-socket.js: a gap, a resync), it
// refetches the whole page, the only answer that carries the room's seq. User data enters only
// as server-rendered, autoescaped HTML or through textContent.
import { copyOnClick } from "./copy.js";
import { followRoom } from "./follow-room.js";
import { paintGroups, paintKeys } from "./keys.js";
import { EVENT, RoomSocket } from "./room-socket.js";

const root = document.getElementById("student");
// Their Kafka login copies on a tap, as on the board.
copyOnClick();
// Records arriving or being processed redraw at most this often: a busy room must not make
// two hundred phones refetch ten times a second.
const SOON_MS = 1000;

function me() {
  return document.getElementById("me");
}

function paint(el) {
  paintKeys(el, ".key-chip[data-key]");
  paintGroups(el);
}

// The instructor's changes: they redraw the produce form and the lesson too, not only #me.
const INSTRUCTOR_EVENTS = new Set([
  EVENT.ROOM_PERMISSIONS, EVENT.ROOM_RESET, EVENT.STUDENT_REMOVED,
  EVENT.LESSON_STARTED, EVENT.LESSON_STAGE, EVENT.LESSON_PREDICTED,
]);
const LESSON_EVENTS = new Set([EVENT.LESSON_STARTED, EVENT.LESSON_STAGE, EVENT.LESSON_PREDICTED]);
// A group's own news, which matters to its members at once.
const GROUP_EVENTS = new Set([
  EVENT.GROUP_CHANGED, EVENT.MEMBER_CRASHED, EVENT.MEMBER_CHANGED, EVENT.OFFSETS_RESET, EVENT.OFFSET_COMMITTED,
]);

// "now": redraw at the next frame; "soon": within SOON_MS; null: not about this student.
function urgency(event, current) {
  const type = event.type;
  const p = event.payload || {};
  if (INSTRUCTOR_EVENTS.has(type)) return "now";
  const group = current.dataset.group;
  // Not in a group yet: a group appearing or changing may be the one to join.
  if (!group) return type === EVENT.GROUP_CREATED || type === EVENT.GROUP_CHANGED ? "now" : null;
  if (GROUP_EVENTS.has(type)) return p.group === group ? "now" : null;
  const mine = new Set(current.dataset.topics.split(" ").filter(Boolean));
  const touches = (batch) => (batch.records || []).some((r) => mine.has(`${batch.topic}-${r.partition}`));
  if (type === EVENT.STEP) {
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
  if (type === EVENT.RECORDS_PRODUCED) return touches(p) ? "soon" : null;
  if (type === EVENT.RECORDS_DELETED) return mine.has(`${p.topic}-${p.partition}`) ? "soon" : null;
  return null;
}

class StudentPage {
  constructor(el) {
    this.root = el;
    this.simNow = Number(el.dataset.now);
    this.timer = null;
    this.lastRefresh = 0;
    this.fetching = false;
    this.again = false;
    this.stopped = false;
    // The consumer this page last showed, and whether the server has since removed it.
    this.lost = null;
    // Counts the student's own requests (htmx, from #me): a fetch that overlapped one cannot
    // tell the server's doing from theirs.
    this.taps = 0;
    paint(document);
    this.updateCountdowns();
    this.socket = new RoomSocket(el.dataset.room, {
      seq: Number(el.dataset.seq),
      apply: (event) => this.apply(event),
      resync: () => this.resync(),
      // Follow-me is a move to make, not something the fetched page shows.
      folded: (event) => followRoom(event),
    });
  }

  apply(event) {
    followRoom(event);
    const clock = event.type === EVENT.STEP ? event.payload?.clock : event.type === EVENT.CLOCK_CHANGED ? event.payload : null;
    if (clock && typeof clock.now_ms === "number") {
      this.simNow = clock.now_ms;
      this.updateCountdowns();
    }
    const current = me();
    if (this.stopped || !current) return;
    if (LESSON_EVENTS.has(event.type) && document.getElementById("lesson-follow")) {
      // The lesson panel reloads itself on this (hx-trigger "loglab:lesson from:body").
      document.body.dispatchEvent(new CustomEvent("loglab:lesson"));
      return;
    }
    const when = urgency(event, current);
    if (when) this.schedule(when === "now" ? 0 : SOON_MS, INSTRUCTOR_EVENTS.has(event.type));
  }

  // Catching up: the whole page, as soon as no tap of the student's is in flight; resolves to
  // the seq it was rendered at (a removed student's page carries one too).
  async resync() {
    clearTimeout(this.timer);
    this.timer = null;
    let doc = null;
    // A tap that lands while the page is fetched makes that fetch stale: fetch again after it.
    for (let tries = 0; !doc && tries < 5; tries++) {
      while (this.fetching || tapInFlight()) await new Promise((resolve) => setTimeout(resolve, 150));
      this.wholePage = true;
      doc = await this.refresh();
    }
    const page = doc?.getElementById("student");
    if (!page) throw new Error("the student's page did not load");
    // The clock events the page skipped are in it too.
    this.simNow = Number(page.dataset.now);
    this.updateCountdowns();
    return Number(page.dataset.seq);
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

  // Resolves to the fetched document once it is swapped in; to nothing when it was put off
  // or the server had no page to give.
  async refresh() {
    // Never swap the buttons from under a tap: wait for the student's own request to land.
    if (this.fetching || tapInFlight()) {
      this.again = true;
      setTimeout(() => this.drain(), 150);
      return null;
    }
    this.fetching = true;
    const taps = this.taps;
    this.lastRefresh = performance.now();
    const wholePage = this.wholePage;
    this.wholePage = false;
    try {
      const headers = wholePage ? {} : { "HX-Request": "true" };
      const response = await fetch(this.root.dataset.meUrl, { headers });
      if (!response.ok && response.status !== 403) return null;
      const html = await response.text();
      // A tap since this fetch began answers with a newer #me of its own (htmx swaps it in):
      // this page is older than that, so it must neither replace it nor be read as news of a
      // removal (a Leave would look like the group dropping the consumer). Fetch again later.
      if (taps !== this.taps || tapInFlight()) {
        this.wholePage = this.wholePage || wholePage;
        this.again = true;
        setTimeout(() => this.drain(), 150);
        return null;
      }
      const doc = new DOMParser().parseFromString(html, "text/html");
      const before = consumerShown();
      for (const id of wholePage ? ["me", "produce", "lesson-follow-slot"] : ["me"]) {
        const fresh = doc.getElementById(id);
        const current = document.getElementById(id);
        if (!fresh || !current || sameContent(current, fresh)) continue;
        current.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
        paint(fresh);
      }
      this.noticeLoss(before);
      this.updateCountdowns();
      produceTopicFollow();
      if (me()?.dataset.removed) {
        this.stopped = true;
        document.getElementById("produce")?.remove();
      }
      return doc;
    } finally {
      this.fetching = false;
    }
  }

  // The page showed a consumer and the server's page has none, though the student did not
  // leave (their own Leave swaps #me through htmx, never through here): the group removed it.
  // Say so, and why as far as this page knows, with a button that joins the group again.
  noticeLoss(before) {
    const current = me();
    if (!current || current.dataset.removed) return;
    if (current.dataset.member) {
      this.lost = null;
      return;
    }
    if (before?.member && !this.lost) {
      const reason = before.crashed ? "crashed" : this.socket.recentlyAway() ? "away" : "other";
      this.lost = { ...before, reason };
    }
    showLoss(this.lost);
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

// What #me shows now: the student's consumer, its group and whether it had crashed.
function consumerShown() {
  const current = me();
  if (!current?.dataset.member) return null;
  return {
    member: current.dataset.member,
    group: current.dataset.group,
    crashed: current.querySelector(".me-crashed") !== null,
  };
}

// Fill the server-rendered notice (hidden in the template) with what was lost; only when the
// group still exists, so that its button can join it again.
function showLoss(lost) {
  const notice = document.querySelector("#me .me-lost");
  if (!notice || !lost) return;
  const join = document.querySelector(`#me .join-groups button[data-group="${CSS.escape(lost.group)}"]`);
  if (!join) return;
  notice.querySelector(".lost-member").textContent = lost.member;
  notice.querySelector(".lost-group").textContent = lost.group;
  for (const span of notice.querySelectorAll("[data-reason]")) span.hidden = span.dataset.reason !== lost.reason;
  const again = notice.querySelector(".lost-join");
  again.value = lost.group;
  again.textContent = `Join ${lost.group} again`;
  notice.hidden = false;
}

function tapInFlight() {
  return document.querySelector("#me .htmx-request, #me.htmx-request") !== null;
}

// A redraw that changes nothing is skipped: it would only swap the button under a finger (the
// page's own answer to a tap and the event that tap caused bring the same fragment) and wipe
// the answer's message ("Slow down…", "Committed…"), which a plain redraw does not carry.
function sameContent(current, fresh) {
  paint(fresh); // as the page would: the key and group colours are set in the browser
  const bare = (el) => {
    const copy = el.cloneNode(true);
    copy
      .querySelectorAll("input[name=csrfmiddlewaretoken], .form-result, .me-lost")
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
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.target.closest?.("#me")) window.loglabStudent.taps++;
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    // The student's own answer: a join clears the notice, a refused one keeps it.
    window.loglabStudent.noticeLoss(null);
    paint(e.target);
    window.loglabStudent.updateCountdowns();
    produceTopicFollow();
  });
  document.body.addEventListener("change", (e) => {
    if (e.target.matches("#produce select[name=topic]")) e.target.dataset.chosen = "1";
  });
}
