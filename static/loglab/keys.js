// A key's colour, shared by every page that draws records, so "same key, same partition, in
// order" reads the same on the board, the queues page and a student's phone. The key's text is
// always drawn too: colour is never the only signal. Importing this module does nothing.

// Hues spread apart, so that neighbouring keys do not look alike on a washed-out projector.
const HUES = [330, 35, 145, 5, 265, 55, 185, 300, 100, 205];

// FNV-1a: cheap, stable across pages and reloads, and spreads short keys well.
export function keyHue(key) {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return HUES[(h >>> 0) % HUES.length];
}

// The server renders keys as data-key only: the hue is computed here, so each page names which
// of its elements carry one (elsewhere a data-key may mean something else).
export function paintKeys(root, selector = "[data-key]") {
  for (const el of root.querySelectorAll(selector)) {
    el.style.setProperty("--key-hue", String(keyHue(el.dataset.key)));
  }
}

// A consumer group gets a colour the same way, for its card, its wires and its chips.
export function paintGroups(root) {
  for (const el of root.querySelectorAll("[data-group]")) {
    el.style.setProperty("--group-hue", String(keyHue(el.dataset.group)));
  }
}

// A key is data (Kafka's are bytes): its control and text-direction characters are shown as
// \uXXXX, as the server's `visible` filter does, so a key never hides or reorders text.
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
export function visibleKey(key) {
  return key.replace(HIDDEN, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
