// A student's page: while it is open, its websocket keeps the student's consumer alive; when
// the group rebalances, the student's part of the page is redrawn from the server.
import { RoomSocket } from "./board.js";

const root = document.getElementById("student");

async function refresh() {
  const response = await fetch(root.dataset.meUrl, { headers: { "HX-Request": "true" } });
  if (!response.ok) return;
  // Server-rendered, autoescaped template output.
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("me");
  const current = document.getElementById("me");
  if (fresh && current) {
    current.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
  }
}

if (root) {
  let seq = Number(root.dataset.seq);
  new RoomSocket(root.dataset.room, {
    since: () => seq,
    onEvent: (event) => {
      if (typeof event.seq === "number") seq = Math.max(seq, event.seq);
      if (event.type === "group.changed" || event.type === "resync") refresh();
    },
  });
}
