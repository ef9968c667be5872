// Entry of the board page (room.html): events in, animation out. Exports nothing.
//
// The room's events are numbered hints (room-socket.js keeps the count and says when to fetch
// the state instead of guessing); the board handles a whole animation frame's worth at once.
// User data (keys, values, names) only ever enters the page through textContent or
// attributes, never as HTML.
import { copyOnClick } from "./copy.js";
import { applyLocks, followRoom } from "./follow-room.js";
import { keyHue, paintGroups, paintKeys, visibleKey } from "./keys.js";
import { EVENT, RoomSocket } from "./room-socket.js";
import { formatRoomSpan, formatSimTime, formatSpeed } from "./sim-time.js";

const board = document.getElementById("board");
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

// Cells kept per partition row; older ones fold into the "+N" counter.
const MAX_CELLS = 40;
// Records flying from a producer to a partition at once; beyond that they just land.
const MAX_FLYERS = 16;
// Cells that get the landing animation in one frame; in a busy room the rest just appear.
const MAX_LANDINGS_PER_FRAME = 12;
const STEP_DELAY_MS = 650;
const NARRATION_KEEP = 60;
// A real client producing fast is told at most this often (the rest joins the summary).
const CLIENT_NARRATION_EVERY_MS = 4000;

// Only cells and chips: elsewhere on the board a data-key is not a record's key.
function paint(root) {
  paintKeys(root, ".cell[data-key], .key-chip[data-key]");
  paintGroups(root);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, reducedMotion.matches ? 0 : ms));
}

function byAttrs(selector, attrs) {
  const parts = Object.entries(attrs).map(([k, v]) => `[data-${k}="${CSS.escape(String(v))}"]`);
  return `${selector}${parts.join("")}`;
}

class Board {
  constructor(root) {
    this.root = root;
    this.room = root.dataset.room;
    this.liveUrl = root.dataset.liveUrl;
    this.resyncWanted = false;
    this.animating = 0;
    this.flyers = 0;
    this.landings = 0;
    // Work for the end of the frame, so the DOM is written, then measured once, then written.
    this.flights = [];
    this.touchedRows = new Set();
    this.wiresDirty = true;
    // What the page received, for tests and for anyone curious in the console.
    this.rebalances = [];
    this.shownRebalances = new Set();
    this.simNow = Number(document.getElementById("sim-clock")?.dataset.now ?? 0);
    this.speed = Number(document.getElementById("sim-clock")?.dataset.speed ?? 1);
    this.running = document.getElementById("sim-clock")?.dataset.running === "1";
    this.summary = this.freshSummary();
    // Per group and partition: records its owner fetched and did not process yet.
    this.fetched = new Map();
    // Per real client (its producer label): when the board last told its records.
    this.clientToldAt = new Map();
    paint(document);
    this.showLogEnds();
    this.layout();
    window.addEventListener("resize", () => this.layoutSoon());
    // Opening "Partitions & retention", a longer member card, a font arriving: anything that
    // moves the logs or the cards moves the wires and markers with it, once per frame.
    if ("ResizeObserver" in window) {
      const resized = new ResizeObserver(() => this.layoutSoon());
      for (const column of this.root.querySelectorAll(".col-log, .col-groups")) resized.observe(column);
    }
    this.socket = new RoomSocket(this.room, {
      seq: Number(document.getElementById("topics")?.dataset.seq ?? 0),
      perFrame: true,
      apply: (event) => this.apply(event),
      resync: () => this.fetchState(),
      // The fetched state shows where a rebalance ended, not how: still worth showing, step by
      // step. The produce and settings forms are outside the fetched regions: their locks too.
      folded: (event) => {
        if (event.type === EVENT.GROUP_CHANGED) this.showRebalance(event);
        followRoom(event);
        applyLocks(event);
      },
      afterBatch: () => {
        this.afterFrame();
        this.flushSummary();
      },
    });
  }

  // Writes, then one measurement, then writes: a frame forces layout once, not per record.
  afterFrame() {
    for (const row of this.touchedRows) {
      this.foldOldCells(row.querySelector(".cells"));
      row.querySelector(".cells").scrollLeft = 1e9; // to the end, without measuring
    }
    this.touchedRows.clear();
    this.landings = 0;
    const flights = this.flights.splice(0).slice(-Math.max(0, MAX_FLYERS - this.flyers));
    const measured = reducedMotion.matches || document.hidden ? [] : flights.map((f) => ({
      ...f, from: f.source.getBoundingClientRect(), to: f.cell.getBoundingClientRect(),
    }));
    const placements = this.measureMarkers();
    for (const m of measured) this.fly(m);
    this.placeMarkers(placements);
    if (this.wiresDirty) this.drawWires();
    this.updateCountdowns();
  }

  apply(event) {
    const p = event.payload || {};
    switch (event.type) {
      case EVENT.RECORDS_PRODUCED:
        this.addRecords(p);
        if (p.explain) this.narrate(`${p.records[0].key}'s record went to partition ${p.records[0].partition} at offset ${p.records[0].offset} because ${p.explain}`);
        else if (p.records[0]?.reason === "client" && this.clientNarrationDue(p.producer)) this.narrateClientRecords(p);
        else this.summary.produced += p.records.length + (p.more || 0);
        break;
      case EVENT.STEP:
        this.applyStep(p);
        break;
      case EVENT.GROUP_CHANGED:
        this.showRebalance(event);
        break;
      case EVENT.RECORDS_DELETED:
        this.deleteRecords(p);
        break;
      case EVENT.OFFSET_COMMITTED:
        this.setCommitted(p.group, `${p.topic}-${p.partition}`, p.offset, p.lag);
        break;
      case EVENT.CLOCK_CHANGED:
        this.setClock(p);
        break;
      case EVENT.MEMBER_CRASHED:
        this.narrate(`${p.member} crashed: it stops heartbeating. ${p.group}'s coordinator removes it when session.timeout.ms runs out, then rebalances.`);
        this.requestResync();
        break;
      case EVENT.SQS_CHANGED:
      case EVENT.CLASSIC_CHANGED:
        break; // drawn by the queues pages
      // A classroom's instructor acting on the students' screens: nothing on the board moved.
      case EVENT.ROOM_FOLLOW:
        followRoom(event);
        break;
      case EVENT.ROOM_PERMISSIONS:
        // A student's board redraws which controls are theirs; nobody else's changes.
        if (applyLocks(event)) this.requestResync();
        break;
      case EVENT.ROOM_RESET:
        this.narrate("The instructor reset the room: fresh topics and groups, the clock at zero.");
        this.requestResync();
        break;
      case EVENT.OFFSETS_RESET:
        this.narrate(`${p.group}: offsets reset (--${p.option}); the group will read from there.`);
        this.requestResync();
        break;
      case EVENT.TOPIC_PARTITIONS_ADDED:
        this.narrate(`${p.topic} went from ${p.before} to ${p.partitions} partitions. Keys now hash onto ${p.partitions}: a key's new records may go to another partition than its old ones, so per-key order holds only within each partition. (Real clients notice at their next metadata refresh, metadata.max.age.ms = 5 min by default; here they notice at once.)`);
        this.requestResync();
        break;
      case EVENT.STUDENT_REMOVED:
        break; // their consumer's leaving arrives as its own group.changed
      case EVENT.LESSON_PREDICTED:
        break; // a student's answer: only the lesson panels count them
      default:
        this.requestResync();
    }
    this.root.dispatchEvent(new CustomEvent("loglab:event", { detail: event }));
  }

  // --- records ---------------------------------------------------------------------------

  addRecords({ topic, producer, records }) {
    const template = document.getElementById("cell-template");
    const source = producer
      ? this.root.querySelector(byAttrs(".producer", { producer }))
      : this.root.querySelector(".produce-form");
    for (const r of records) {
      const row = this.root.querySelector(byAttrs(".partition", { topic, partition: r.partition }));
      if (!row) {
        this.requestResync();
        return;
      }
      const cells = row.querySelector(".cells");
      const next = cells.querySelector(".cell-next");
      const cell = template.content.firstElementChild.cloneNode(true);
      if (this.landings++ >= MAX_LANDINGS_PER_FRAME) cell.classList.remove("cell-new");
      cell.dataset.topic = topic;
      cell.dataset.partition = String(r.partition);
      cell.dataset.offset = String(r.offset);
      if (r.key !== null) {
        cell.dataset.key = r.key;
        cell.style.setProperty("--key-hue", String(keyHue(r.key)));
      }
      if (r.value === null) cell.classList.add("is-tombstone");
      cell.querySelector(".cell-offset").textContent = String(r.offset);
      cell.querySelector(".cell-key").textContent = r.key === null ? "∅" : visibleKey(r.key);
      cell.title = `offset ${r.offset} · key ${r.key ?? "null"} · ${r.value ?? "(tombstone)"}`;
      cells.insertBefore(cell, next);
      next.querySelector(".cell-offset").textContent = String(r.offset + 1);
      row.dataset.logEnd = String(r.offset + 1);
      row.querySelector(".leo b").textContent = String(r.offset + 1);
      this.touchedRows.add(row);
      if (source) this.flights.push({ source, cell, key: r.key });
    }
    for (const row of this.touchedRows) this.refreshLags(row);
  }

  // A real client's records: its own partitioner chose each partition, not LogLab. Told once
  // every few seconds per client; its other batches go into the running summary.
  clientNarrationDue(producer) {
    const now = performance.now();
    if (now - (this.clientToldAt.get(producer) ?? -Infinity) < CLIENT_NARRATION_EVERY_MS) return false;
    this.clientToldAt.set(producer, now);
    return true;
  }

  narrateClientRecords({ topic, producer, records, more }) {
    const count = records.length + (more || 0);
    const who = `${producer || "A Kafka client"} (a real client)`;
    if (count === 1) {
      const r = records[0];
      const key = r.key === null ? "a null-key record" : `${visibleKey(r.key)}'s record`;
      this.narrate(`${who} put ${key} in ${topic}-${r.partition} at offset ${r.offset}: the client's own partitioner chose the partition.`);
      return;
    }
    const partitions = [...new Set(records.map((r) => r.partition))].sort((a, b) => a - b);
    this.narrate(`${who} sent ${count} records to ${topic}, partition${partitions.length === 1 ? "" : "s"} ${partitions.join(", ")}: the client's own partitioner chose each partition.`);
  }

  foldOldCells(cells) {
    const drawn = cells.querySelectorAll(".cell[data-offset]");
    let extra = drawn.length - MAX_CELLS;
    if (extra <= 0) return;
    let more = cells.querySelector(".cell-more");
    if (!more) {
      more = document.createElement("li");
      more.className = "cell-more";
      more.dataset.count = "0";
      cells.prepend(more);
    }
    for (const cell of drawn) {
      if (extra-- <= 0) break;
      cell.remove();
      more.dataset.count = String(Number(more.dataset.count || 0) + 1);
    }
    more.textContent = `+${more.dataset.count}`;
    more.title = `${more.dataset.count} older records not drawn`;
  }

  // A record visibly travels from its producer into its partition (positions measured by
  // afterFrame, in one pass for the whole frame).
  fly({ cell, key, from, to }) {
    if (!to.width || !cell.isConnected) return;
    const flyer = document.getElementById("flyer-template").content.firstElementChild.cloneNode(true);
    flyer.textContent = key === null || key === undefined ? "∅" : visibleKey(key);
    if (key !== null) flyer.style.setProperty("--key-hue", String(keyHue(key)));
    else flyer.classList.add("is-null");
    const x0 = from.right - 20;
    const y0 = from.top + 12;
    flyer.style.left = `${x0}px`;
    flyer.style.top = `${y0}px`;
    document.getElementById("flyers").append(flyer);
    this.flyers++;
    cell.classList.add("is-arriving");
    const animation = flyer.animate(
      [{ transform: "translate(0, 0) scale(1)", opacity: 1 },
       { transform: `translate(${to.left - x0}px, ${to.top - y0}px) scale(0.9)`, opacity: 0.9 }],
      { duration: 520, easing: "cubic-bezier(.3,.7,.4,1)" },
    );
    animation.onfinish = () => {
      flyer.remove();
      cell.classList.remove("is-arriving");
      this.flyers--;
    };
  }

  deleteRecords({ topic, partition, offsets, log_start_offset: logStart, count, reasons }) {
    const row = this.root.querySelector(byAttrs(".partition", { topic, partition }));
    if (row) {
      for (const offset of offsets) {
        const cell = row.querySelector(byAttrs(".cell", { offset }));
        if (!cell) continue;
        cell.classList.add("is-deleted");
        setTimeout(() => { cell.remove(); this.placeMarkers(this.measureMarkers()); }, reducedMotion.matches ? 0 : 900);
      }
      row.dataset.logStart = String(logStart);
      row.querySelector(".log-start").textContent = String(logStart);
    }
    const why = Object.entries(reasons || {}).map(([reason, n]) => `${n} by ${reason}`).join(", ");
    this.narrate(`${topic}-${partition}: the log cleaner deleted ${count} record${count === 1 ? "" : "s"} (${why}); log start offset is now ${logStart}. Offsets are never reused.`);
  }

  // --- groups, offsets, lag ----------------------------------------------------------------

  applyStep({ clock, produced, groups }) {
    if (clock) this.setClock(clock);
    for (const batch of produced || []) {
      this.addRecords(batch);
      const sent = this.root.querySelector(byAttrs(".producer", { producer: batch.producer }))?.querySelector(".sent");
      if (sent) sent.textContent = String(Number(sent.textContent) + batch.records.length + (batch.more || 0));
      this.summary.produced += batch.records.length + (batch.more || 0);
    }
    for (const g of groups || []) {
      for (const [tp, position] of Object.entries(g.positions || {})) this.setPosition(g.group, tp, position);
      if (g.fetched) this.setFetched(g.group, g.positions || {}, g.fetched);
      for (const c of g.commits || []) this.setCommitted(g.group, c.tp, c.offset, c.lag);
      this.addLedger(g);
      for (const s of g.starts || []) {
        if (s.reason && s.reason !== "committed") this.narrate(`${g.group}: ${s.member} starts ${s.tp} at offset ${s.offset}: ${s.reason}.`);
      }
      for (const s of g.stuck || []) this.narrate(`${g.group}: ${s.member} cannot read ${s.tp}: ${s.error}`);
    }
  }

  setCommitted(group, tp, offset, lag) {
    const dash = tp.lastIndexOf("-");
    const topic = tp.slice(0, dash);
    const partition = tp.slice(dash + 1);
    const row = this.root.querySelector(byAttrs(".partition", { topic, partition }));
    if (row) {
      const marker = row.querySelector(byAttrs(".marker", { group }));
      if (marker) marker.dataset.committed = String(offset);
      this.refreshLags(row);
    }
    const line = document.querySelector(byAttrs("#describe tr", { group, tp }));
    if (line) {
      line.querySelector(".d-current").textContent = String(offset);
      line.querySelector(".d-lag").textContent = lag === null || lag === undefined ? "-" : String(lag);
    }
  }

  // A member's "fetched, not processed": its last poll's records and its fetch buffer.
  setFetched(group, positions, fetched) {
    const byTp = this.fetched.get(group) || new Map();
    for (const [tp, end] of Object.entries(fetched)) {
      const position = positions[tp];
      if (end === null || position === undefined) byTp.delete(tp);
      else byTp.set(tp, Math.max(0, Number(end) - Number(position)));
    }
    this.fetched.set(group, byTp);
    const card = this.root.querySelector(byAttrs(".group", { group }));
    for (const member of card?.querySelectorAll(".member") || []) {
      const count = member.querySelector(".m-fetched");
      if (!count) continue;
      const tps = (member.dataset.assigned || "").split(" ").filter(Boolean);
      count.textContent = String(tps.reduce((sum, tp) => sum + (byTp.get(tp) || 0), 0));
    }
  }

  setPosition(group, tp, position) {
    const dash = tp.lastIndexOf("-");
    const row = this.root.querySelector(byAttrs(".partition", { topic: tp.slice(0, dash), partition: tp.slice(dash + 1) }));
    const marker = row?.querySelector(byAttrs(".position-marker", { group }));
    if (marker) marker.dataset.position = String(position);
  }

  // Lag = log end offset - committed offset, per group, on each partition row.
  refreshLags(row) {
    const end = Number(row.dataset.logEnd);
    for (const lagEl of row.querySelectorAll(".lag")) {
      const marker = row.querySelector(byAttrs(".marker", { group: lagEl.dataset.group }));
      const committed = marker?.dataset.committed;
      const lag = committed === "" || committed === undefined ? null : Math.max(0, end - Number(committed));
      lagEl.dataset.lag = lag === null ? "" : String(lag);
      lagEl.querySelector("b").textContent = lag === null ? "-" : String(lag);
      const tp = `${row.dataset.topic}-${row.dataset.partition}`;
      const line = document.querySelector(byAttrs("#describe tr", { group: lagEl.dataset.group, tp }));
      if (line) {
        line.querySelector(".d-leo").textContent = String(end);
        line.querySelector(".d-lag").textContent = lag === null ? "-" : String(lag);
      }
    }
  }

  addLedger({ group, processed, totals }) {
    const card = this.root.querySelector(byAttrs(".group", { group }));
    if (!card) return;
    const list = card.querySelector(".ledger-lines");
    for (const line of processed || []) {
      const li = document.createElement("li");
      li.className = `ledger-line is-${line.status}`;
      li.title = `${line.member} ${line.status}`;
      li.textContent = `${line.tp}@${line.offset}${line.status === "duplicate" ? " ×2" : line.status === "skipped" ? " ✕" : ""}`;
      list.prepend(li);
      if (line.status === "duplicate") this.summary.duplicates++;
      else if (line.status === "skipped") this.summary.skipped++;
      else this.summary.processed++;
    }
    while (list.children.length > 40) list.lastElementChild.remove();
    if (totals) {
      card.querySelector(".t-processed").textContent = String(totals.processed);
      card.querySelector(".t-duplicates").textContent = String(totals.duplicates);
      card.querySelector(".t-skipped").textContent = String(totals.skipped);
    }
  }

  // A rebalance, step by step from the engine's plan: eager revokes every line then redraws;
  // cooperative moves only the lines that change, in two rounds.
  async animateRebalance({ group, plan, at }) {
    this.animating++;
    try {
      await this.socket.resync();
      if (!plan || !plan.steps?.length) return;
      const card = this.root.querySelector(byAttrs(".group", { group }));
      if (!card) return;
      const first = plan.steps[0];
      const before = {};
      for (const [member, owned] of Object.entries(first.owned || {})) {
        before[member] = [...owned, ...(first.revoked?.[member] || [])];
      }
      for (const [member, revoked] of Object.entries(first.revoked || {})) {
        if (!(member in before)) before[member] = [...revoked];
      }
      this.showOwnership(card, before);
      this.setGroupState(card, plan.steps[0].state === "PreparingRebalance" ? "Stable" : plan.steps[0].state, plan.generation_before);
      await sleep(STEP_DELAY_MS);
      for (const step of plan.steps) {
        this.setGroupState(card, step.state, step.generation);
        this.showOwnership(card, step.owned || {});
        // Stamped with the room time the rebalance happened at, not the time the animation
        // reaches the step: the room's clock runs on meanwhile (13 s per step at 20x).
        if (step.narration) this.narrate(`${group}: ${step.narration}`, at);
        await sleep(STEP_DELAY_MS);
      }
    } finally {
      this.animating--;
      if (this.resyncWanted) this.requestResync();
    }
  }

  showRebalance(event) {
    if (this.shownRebalances.has(event.seq)) return;
    this.shownRebalances.add(event.seq);
    const p = event.payload;
    this.rebalances.push({ group: p.group, plan: p.plan, seq: event.seq });
    const at = Number.isFinite(p.at_ms) ? p.at_ms : this.simNow;
    if (p.narration) this.narrate(p.narration, at);
    this.animateRebalance({ ...p, at });
  }

  setGroupState(card, state, generation) {
    const badge = card.querySelector(".badge.state");
    badge.textContent = state;
    badge.dataset.state = state;
    card.querySelector(".generation").textContent = String(generation);
  }

  showOwnership(card, owned) {
    const template = document.getElementById("chip-template");
    for (const member of card.querySelectorAll(".member")) {
      const tps = (owned[member.dataset.member] || []).map((tp) => (Array.isArray(tp) ? `${tp[0]}-${tp[1]}` : String(tp)));
      member.dataset.assigned = tps.join(" ");
      const chips = member.querySelector(".chips");
      chips.replaceChildren(...tps.map((tp) => {
        const chip = template.content.firstElementChild.cloneNode(true);
        chip.textContent = tp;
        return chip;
      }));
      member.classList.toggle("is-idle", tps.length === 0);
    }
    this.drawWires();
  }

  setClock({ now_ms: now, display, running, speed }) {
    const el = document.getElementById("sim-clock");
    this.simNow = now;
    this.running = Boolean(running);
    if (Number.isFinite(Number(speed)) && Number(speed) > 0) this.speed = Number(speed);
    const beside = document.getElementById("narration-clock");
    if (beside) beside.textContent = `room time · ${formatSpeed(this.speed)}`;
    if (el) {
      el.textContent = display || formatSimTime(now);
      el.dataset.now = String(now);
      el.dataset.running = running ? "1" : "0";
      el.dataset.speed = String(speed);
    }
    const button = document.getElementById("play-pause");
    if (button) {
      button.value = running ? "pause" : "play";
      button.textContent = running ? "Pause" : "Play";
    }
    const select = document.getElementById("speed");
    if (select && document.activeElement !== select) select.value = String(speed);
    this.updateCountdowns();
  }

  updateCountdowns() {
    for (const el of this.root.querySelectorAll(".countdown[data-deadline]")) {
      const left = Math.max(0, Math.ceil((Number(el.dataset.deadline) - this.simNow) / 1000));
      el.textContent = `in ${left} s`;
    }
  }

  // --- narration ---------------------------------------------------------------------------

  // Every stamp is room time: the event's own when it carries one, else the clock as last told.
  narrate(text, atMs = this.simNow) {
    const list = document.getElementById("narration");
    if (!list) return;
    const item = document.getElementById("narration-template").content.firstElementChild.cloneNode(true);
    const stamp = item.querySelector("time");
    stamp.textContent = formatSimTime(atMs).split(", ")[1];
    stamp.dataset.roomMs = String(atMs);
    item.querySelector(".text").textContent = text;
    list.prepend(item);
    while (list.children.length > NARRATION_KEEP) list.lastElementChild.remove();
  }

  freshSummary() {
    return { produced: 0, processed: 0, duplicates: 0, skipped: 0, wall: performance.now(), room: this.simNow };
  }

  // Busy rooms are summarised every two seconds of the watch instead of a line per record;
  // the summary says how much ROOM time it covers (40 s of it at 20x).
  flushSummary() {
    const s = this.summary;
    if (performance.now() - s.wall < 2000) return;
    const parts = [];
    if (s.produced) parts.push(`${s.produced} record${s.produced === 1 ? "" : "s"} produced`);
    if (s.processed) parts.push(`${s.processed} processed`);
    if (s.duplicates) parts.push(`${s.duplicates} processed AGAIN (duplicates)`);
    if (s.skipped) parts.push(`${s.skipped} never processed (lost)`);
    const span = this.simNow - s.room;
    const covered = span > 0 ? `Last ${formatRoomSpan(span)} of room time (${formatSpeed(this.speed)})` : "While the room's clock stood still";
    if (parts.length) this.narrate(`${covered}: ${parts.join(", ")}.`);
    this.summary = this.freshSummary();
  }

  // --- layout: markers and wires ---------------------------------------------------------

  // A log is read from its end: a freshly drawn row shows its newest records, as a row that
  // receives one does.
  showLogEnds() {
    for (const cells of this.root.querySelectorAll(".partition .cells")) cells.scrollLeft = 1e9;
  }

  layoutSoon() {
    if (this.layoutRequested) return;
    this.layoutRequested = true;
    requestAnimationFrame(() => {
      this.layoutRequested = false;
      this.layout();
    });
  }

  layout() {
    this.placeMarkers(this.measureMarkers());
    this.drawWires();
    this.updateCountdowns();
  }

  // Each group's committed offset as a marker over the cell it points at (the next record the
  // group will read), or over the dashed log-end cell when it has read everything; and each
  // consumer's position below its cell. Measures only: placeMarkers writes.
  measureMarkers() {
    const placements = [];
    for (const row of this.root.querySelectorAll(".partition")) {
      const cells = row.querySelector(".cells");
      const trackBox = row.querySelector(".track").getBoundingClientRect();
      const find = (offset) => {
        if (offset === "" || offset === undefined) return null;
        return cells.querySelector(byAttrs(".cell", { offset }))
          || (Number(offset) >= Number(row.dataset.logEnd) ? cells.querySelector(".cell-next") : null);
      };
      for (const marker of row.querySelectorAll(".position-marker")) {
        const target = find(marker.dataset.position);
        const box = target?.getBoundingClientRect();
        const x = box ? box.left - trackBox.left + box.width / 2 - 5 : 0;
        placements.push({ el: marker, hidden: !box, x: Math.min(Math.max(x, 0), trackBox.width - 10), y: 0 });
      }
      [...row.querySelectorAll(".marker")].forEach((marker, index) => {
        const committed = marker.dataset.committed;
        const target = find(committed) || (committed ? cells.querySelector(".cell[data-offset]") : null);
        if (!target) {
          placements.push({ el: marker, hidden: true });
          return;
        }
        const box = target.getBoundingClientRect();
        // A committed offset scrolled out of sight is pinned to the edge, pointing at it.
        const widest = Math.max(0, trackBox.width - marker.offsetWidth);
        const left = box.left - trackBox.left;
        const pinned = left < 0 ? "start" : left > widest ? "end" : "";
        placements.push({ el: marker, hidden: false, pinned, x: Math.min(Math.max(left, 0), widest), y: -index * 15 });
      });
    }
    return placements;
  }

  placeMarkers(placements) {
    for (const p of placements) {
      p.el.hidden = p.hidden;
      if (p.hidden) continue;
      if (p.pinned !== undefined) p.el.dataset.pinned = p.pinned;
      p.el.style.transform = `translate(${Math.round(p.x)}px, ${p.y}px)`;
    }
  }

  drawWires() {
    this.wiresDirty = false;
    const svg = document.getElementById("wires");
    if (!svg) return;
    const area = this.root.getBoundingClientRect();
    svg.setAttribute("viewBox", `0 0 ${area.width} ${area.height}`);
    const paths = [];
    if (getComputedStyle(svg).display !== "none") {
      for (const member of this.root.querySelectorAll(".member[data-assigned]")) {
        const assigned = member.dataset.assigned.split(" ").filter(Boolean);
        const box = member.getBoundingClientRect();
        if (!box.width) continue;
        const endX = box.left - area.left;
        const endY = box.top - area.top + Math.min(22, box.height / 2);
        for (const tp of assigned) {
          const dash = tp.lastIndexOf("-");
          const row = this.root.querySelector(byAttrs(".partition", { topic: tp.slice(0, dash), partition: tp.slice(dash + 1) }));
          if (!row) continue;
          const r = row.getBoundingClientRect();
          const startX = r.right - area.left;
          const startY = r.top - area.top + r.height / 2;
          const bend = Math.max(30, (endX - startX) / 2);
          const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
          path.setAttribute("d", `M ${startX} ${startY} C ${startX + bend} ${startY}, ${endX - bend} ${endY}, ${endX} ${endY}`);
          path.setAttribute("class", member.classList.contains("is-crashed") ? "wire is-crashed" : "wire");
          path.style.setProperty("--group-hue", String(keyHue(member.dataset.group)));
          path.dataset.member = member.dataset.member;
          path.dataset.tp = tp;
          paths.push(path);
        }
      }
    }
    svg.replaceChildren(...paths);
  }

  // --- resync ------------------------------------------------------------------------------

  requestResync() {
    if (this.animating) {
      this.resyncWanted = true;
      return;
    }
    this.resyncWanted = false;
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.socket.resync(), 50);
  }

  // Every live region at once, from the server (room-socket.js decides when); resolves to the
  // seq the fragment was rendered at.
  async fetchState() {
    const response = await fetch(this.liveUrl, { headers: { "HX-Request": "true" } });
    if (!response.ok) throw new Error(`${this.liveUrl}: ${response.status}`);
    // The fragment is server-rendered, autoescaped template output.
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const seq = Number(doc.getElementById("live")?.dataset.seq);
    for (const id of ["sim-clock", "producers", "topics", "groups", "describe", "brokers"]) {
      const fresh = doc.getElementById(id);
      const current = document.getElementById(id);
      if (fresh && current) {
        if (id === "groups") this.keepOpen(current, fresh);
        current.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
      }
    }
    paint(document);
    this.showLogEnds();
    this.refreshTopicChoices();
    const clock = document.getElementById("sim-clock");
    if (clock) this.simNow = Number(clock.dataset.now);
    this.layout();
    // The events the fresh state folded in were never applied one by one: tell the page's
    // other parts (a lesson's panel) that the room moved on, so they redraw too.
    this.root.dispatchEvent(new CustomEvent("loglab:event", { detail: { type: EVENT.RESYNC, seq } }));
    return seq;
  }

  // An instructor's half-filled form survives a redraw of the groups.
  keepOpen(current, fresh) {
    current.querySelectorAll("details[open]").forEach((d, i) => {
      const twin = fresh.querySelectorAll("details")[i];
      if (twin) twin.open = true;
    });
  }

  refreshTopicChoices() {
    const names = [...document.querySelectorAll("#topics section.topic")].map((s) => s.dataset.topic);
    for (const select of this.root.querySelectorAll("select[name=topic]")) {
      const chosen = select.value;
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
}

// A record's value on hover or keyboard focus (the title holds it; shown as text).
const detail = document.getElementById("cell-detail");
function showDetail(event) {
  const cell = event.target.closest?.(".cell[data-offset]");
  if (!detail) return;
  if (!cell) {
    detail.hidden = true;
    return;
  }
  detail.textContent = `${cell.dataset.topic}-${cell.dataset.partition} · ${cell.title}`;
  detail.hidden = false;
}
document.addEventListener("focusin", showDetail);
document.addEventListener("mouseover", showDetail);

copyOnClick();

// Control results fade after a while; errors stay until the next action.
const toast = document.getElementById("toast");
if (toast) {
  let timer = null;
  new MutationObserver(() => {
    clearTimeout(timer);
    if (toast.querySelector(".is-error")) return;
    timer = setTimeout(() => toast.replaceChildren(), 5000);
  }).observe(toast, { childList: true });
}

if (board) {
  window.loglab = new Board(board);
}
