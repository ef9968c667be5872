// The instructor's hand on a classroom student's pages: "follow me" and the locks.
//
// base.html marks a page viewed by a student of a classroom with data-follows="1" and the
// path the instructor chose (data-follow-path, empty when follow-me is off). Every page that
// listens to the room's websocket passes its events here: `room.follow` sends the student's
// screen to the instructor's page, `room.permissions` redraws which controls are locked.
// The server checks every action anyway; this only keeps the page honest about it.
// Importing this module does nothing: follow.js, the entry, calls followOnLoad().

import { EVENT } from "./room-socket.js";

function follows() {
  return document.body?.dataset.follows === "1";
}

function samePage(path) {
  return path === location.pathname;
}

// A room path only (the server validated it; this is a second guard): never another site.
function isRoomPath(path) {
  return typeof path === "string" && /^\/r\/[A-Za-z0-9-]+\/[A-Za-z0-9/_-]*$/.test(path);
}

export function followRoom(event) {
  if (!event || event.type !== EVENT.ROOM_FOLLOW || !follows()) return false;
  const path = event.payload?.path ?? "";
  document.body.dataset.followPath = path;
  if (!path || !isRoomPath(path) || samePage(path)) return false;
  location.assign(path);
  return true;
}

// Controls wrapped in <fieldset data-needs="produce"> (and their .lock-note) follow the
// instructor's locks on a student's page.
export function applyLocks(event) {
  if (!event || event.type !== EVENT.ROOM_PERMISSIONS) return false;
  if (document.body?.dataset.actor !== "student") return false;
  const allowed = event.payload?.permissions || {};
  for (const fieldset of document.querySelectorAll("fieldset[data-needs]")) {
    fieldset.disabled = allowed[fieldset.dataset.needs] !== true;
  }
  for (const note of document.querySelectorAll(".lock-note[data-needs]")) {
    note.hidden = allowed[note.dataset.needs] === true;
  }
  return true;
}

// A page opened while follow-me is on goes where the instructor is.
export function followOnLoad() {
  if (!follows()) return;
  const path = document.body.dataset.followPath;
  if (path && isRoomPath(path) && !samePage(path)) location.assign(path);
}
