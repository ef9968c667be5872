// The presenter page's join card: folded once the class has joined, and remembered per room in
// this browser, so a reload (or the next lesson) keeps the roster and the votes on the first
// screen. Without JavaScript the card still folds (it is a <details>); it is just not remembered.
import { copyOnClick } from "./copy.js";

const card = document.getElementById("join-card");

if (card) {
  const key = card.dataset.foldKey;
  try {
    if (localStorage.getItem(key) === "1") card.open = false;
  } catch {
    // Storage refused (private mode, a policy): the card simply starts open.
  }
  card.addEventListener("toggle", () => {
    try {
      if (card.open) localStorage.removeItem(key);
      else localStorage.setItem(key, "1");
    } catch {
      // As above: folding still works, it is only not remembered.
    }
  });
}

// The room's Kafka login (folded, not for the projector) copies on a click.
copyOnClick();
