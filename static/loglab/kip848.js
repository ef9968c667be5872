// KIP-848 groups on the board (#15): group.protocol=consumer reconciles one heartbeat at a
// time and nobody stops. A page entry: exports nothing.
//
// board.js applies the room's events and tells the page about each (`loglab:event` on #board).
// A `group.reconciled` event makes board.js fetch the live fragment, which draws the new state
// (kip848_member.html: epochs, partitions being revoked, partitions awaited); this module tells
// what happened in the narration and, once the fresh fragment is in, marks what just moved:
// a partition given to a member lands on its card, one being revoked fades on its owner's, a
// released one flashes on its partition row. Everyone else's partitions stay as they were.
import { EVENT } from "./room-socket.js";

const board = document.getElementById("board");
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
// How long a mark stays (CSS animates it meanwhile).
const MARK_MS = 2400;
const pending = [];

function narrate(text, atMs) {
  if (window.loglab?.narrate) window.loglab.narrate(text, atMs);
}

function memberCard(group, member) {
  return [...document.querySelectorAll("#groups .member")].find(
    (el) => el.dataset.group === group && el.dataset.member === member,
  );
}

function partitionRow(tp) {
  const dash = tp.lastIndexOf("-");
  return [...document.querySelectorAll("#topics .partition")].find(
    (el) => el.dataset.topic === tp.slice(0, dash) && el.dataset.partition === tp.slice(dash + 1),
  );
}

function mark(el, name) {
  if (!el || reducedMotion.matches) return;
  el.classList.add(name);
  setTimeout(() => el.classList.remove(name), MARK_MS);
}

function chips(card, selector, tp) {
  return [...(card?.querySelectorAll(selector) || [])].filter((chip) => chip.textContent.trim() === tp);
}

function show({ group, moves }) {
  for (const move of moves || []) {
    const card = move.member ? memberCard(group, move.member) : null;
    for (const tp of move.tps || []) {
      if (move.kind === "assigned") chips(card, ".chips > .tp-chip", tp).forEach((c) => mark(c, "kip-arrived"));
      else if (move.kind === "revoking") chips(card, ".is-revoking", tp).forEach((c) => mark(c, "kip-revoking"));
      else if (move.kind === "revoked" || move.kind === "left") mark(partitionRow(tp), "kip-released");
    }
    if (move.kind === "member_epoch") mark(card?.querySelector(".member-epoch"), "kip-bumped");
    if (move.kind === "group_epoch" || move.kind === "target") {
      const meta = document.querySelector(`#groups .group[data-group="${CSS.escape(group)}"] .kip848-meta`);
      mark(meta, "kip-bumped");
    }
  }
}

if (board) {
  board.addEventListener("loglab:event", ({ detail: event }) => {
    if (event.type === EVENT.GROUP_RECONCILED) {
      const p = event.payload || {};
      for (const line of (p.narration || "").split("; ").filter(Boolean)) {
        narrate(p.refused ? line : `${p.group}: ${line}`, p.at_ms);
      }
      pending.push(p);
      return;
    }
    // The fragment board.js fetched after those events is in: mark what they moved.
    if (event.type === EVENT.RESYNC && pending.length) {
      for (const p of pending.splice(0)) show(p);
    }
  });
}
