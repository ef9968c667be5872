// The brokers panel and the high watermark on the board (#16). A page entry: exports nothing.
//
// board.js applies the room's events and tells the page about each (`loglab:event` on
// #board). A step carries the replicated partitions that changed (`replication`): their
// numbers and classes are updated here in place. A broker change makes board.js fetch the
// whole live fragment, #brokers included, so nothing here redraws it. Records past a
// partition's high watermark are not readable yet: their cells are marked.
import { EVENT } from "./room-socket.js";

const board = document.getElementById("board");

function replicaRows(tp) {
  return [...document.querySelectorAll("#brokers .replica[data-tp]")].filter((el) => el.dataset.tp === tp);
}

function markUncommitted(root = document) {
  for (const partition of root.querySelectorAll(".partition[data-hw]")) {
    const hw = Number(partition.dataset.hw);
    for (const cell of partition.querySelectorAll(".cell[data-offset]")) {
      const past = Number(cell.dataset.offset) >= hw;
      cell.classList.toggle("is-uncommitted", past);
      if (past) cell.title = cell.title.replace(/ · not yet readable.*$/, "") + " · not yet readable: past the high watermark";
    }
  }
}

function setText(el, text) {
  if (el) el.textContent = String(text);
}

function applyPartition(view) {
  const isr = new Set(view.isr);
  for (const row of replicaRows(view.tp)) {
    const broker = row.dataset.broker;
    const leader = String(view.leader) === broker;
    row.classList.toggle("is-leader", leader);
    row.classList.toggle("is-out", !isr.has(Number(broker)));
    setText(row.querySelector(".replica-role"), leader ? "★ leader" : "follower");
    setText(row.querySelector(".replica-sync"), isr.has(Number(broker)) ? "ISR" : "out");
    const leo = view.leo[broker];
    if (leo !== undefined) setText(row.querySelector(".replica-leo b"), leo);
    const hw = leader ? view.hw : view.rhw[broker];
    if (hw !== undefined) setText(row.querySelector(".replica-hw b"), hw);
    const end = Math.max(...Object.values(view.leo));
    const bar = row.querySelector(".replica-bar span");
    if (bar && leo !== undefined) bar.style.setProperty("--filled", `${end ? Math.round((leo / end) * 100) : 100}%`);
  }
  const line = [...document.querySelectorAll("#brokers .isr-table tr[data-tp]")].find((tr) => tr.dataset.tp === view.tp);
  if (line) {
    setText(line.querySelector(".isr-leader"), view.leader === null ? "none (offline)" : view.leader);
    setText(line.querySelector(".isr-epoch"), view.epoch);
    setText(line.querySelector(".isr-members"), `[${view.isr.join(", ")}]`);
    setText(line.querySelector(".isr-hw"), view.hw);
  }
  const dash = view.tp.lastIndexOf("-");
  const topic = view.tp.slice(0, dash);
  const index = view.tp.slice(dash + 1);
  for (const partition of document.querySelectorAll(".partition[data-hw]")) {
    if (partition.dataset.topic === topic && partition.dataset.partition === index) {
      partition.dataset.hw = String(view.hw);
    }
  }
}

function narrate(text) {
  const list = document.getElementById("narration");
  const template = document.getElementById("narration-template");
  const clock = document.getElementById("sim-clock");
  if (!list || !template) return;
  const item = template.content.firstElementChild.cloneNode(true);
  item.querySelector("time").textContent = (clock?.textContent || "").slice(7);
  item.querySelector(".text").textContent = text;
  list.prepend(item);
}

function describeChange(p) {
  const elections = (p.partitions || []).filter((v) => v.elected);
  const moved = elections.map((v) =>
    v.leader === null ? `${v.tp} has no leader: offline` : `${v.tp} now led by broker ${v.leader} (leader epoch ${v.epoch}, ISR [${v.isr.join(", ")}])`,
  );
  let head;
  if (p.state === "preferred") head = "Preferred leader election";
  else if (p.brokers !== undefined && p.broker === undefined) head = `The room now has ${p.brokers} broker(s)`;
  else if (p.state === "stopped") head = `Broker ${p.broker} stopped: the controller fences it out of every ISR`;
  else if (p.state === "slow") head = `Broker ${p.broker} is slow: its followers fetch rarely, and leave the ISR after replica.lag.time.max.ms`;
  else head = `Broker ${p.broker} runs again: its replicas truncate what diverged and catch up`;
  let text = moved.length ? `${head}. ${moved.join("; ")}.` : `${head}.`;
  if (p.lost) text += ` ${p.lost} record(s) lost: the new leader never had them (see Lost records).`;
  return text;
}

board?.addEventListener("loglab:event", (e) => {
  const event = e.detail;
  const p = event.payload || {};
  if (event.type === EVENT.STEP && Array.isArray(p.replication)) {
    for (const view of p.replication) {
      applyPartition(view);
      if (view.elected) narrate(`${view.tp}: ${view.leader === null ? "no leader, offline" : `broker ${view.leader} leads (leader epoch ${view.epoch})`}${view.lost ? `; ${view.lost} record(s) lost` : ""}.`);
    }
  } else if (event.type === EVENT.BROKER_CHANGED) {
    narrate(describeChange(p));
  }
  requestAnimationFrame(() => markUncommitted());
});

markUncommitted();
