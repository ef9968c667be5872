// Entry, loaded by base.html on a classroom student's pages only: a page opened while
// follow-me is on goes where the instructor is. Kept apart from follow-room.js so that pages
// importing followRoom/applyLocks never navigate just by importing them.
import { followOnLoad } from "./follow-room.js";

followOnLoad();
