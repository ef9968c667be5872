// A room's timeline page: the scrubber and "Play" step through the kept moments by asking the
// server for the board at each one (htmx swaps #past); the server draws every past board.
import { formatSimTime } from "./sim-time.js";

let playing = null; // the timer of "Play", or null

function marks() {
  const node = document.getElementById("timeline-marks");
  return node ? JSON.parse(node.textContent) : [];
}

function go(seq) {
  const past = document.getElementById("past");
  if (!past || !window.htmx) return;
  const url = `${past.dataset.url}?seq=${seq}`;
  window.htmx.ajax("GET", url, { target: "#past", swap: "outerHTML" }).then(() => {
    window.history.replaceState(null, "", url);
  });
}

function showPending(index) {
  const mark = marks()[index];
  if (!mark) return;
  document.getElementById("timeline-seq").textContent = `#${mark[0]}`;
  document.getElementById("timeline-when").textContent = formatSimTime(mark[1]);
}

function stop() {
  if (playing !== null) window.clearTimeout(playing);
  playing = null;
  const button = document.getElementById("timeline-play");
  if (button) button.textContent = "Play";
}

function playNext() {
  const scrub = document.getElementById("timeline-scrub");
  const speed = Number(document.getElementById("timeline-speed")?.value || 1);
  const index = Number(scrub.value) + 1;
  const mark = marks()[index];
  if (!mark) {
    stop();
    return;
  }
  // The next step is asked for once this one is drawn: a slow server slows the play down
  // instead of piling requests up.
  playing = window.setTimeout(() => {
    showPending(index);
    go(mark[0]);
  }, 1000 / speed);
}

document.addEventListener("input", (event) => {
  if (event.target.id === "timeline-scrub") {
    stop();
    showPending(Number(event.target.value));
  }
});

document.addEventListener("change", (event) => {
  if (event.target.id === "timeline-scrub") {
    const mark = marks()[Number(event.target.value)];
    if (mark) go(mark[0]);
  }
});

document.addEventListener("click", (event) => {
  if (event.target.id !== "timeline-play") return;
  if (playing !== null) {
    stop();
    return;
  }
  event.target.textContent = "Pause";
  playNext();
});

// After each swap: keep the chosen speed and carry on playing.
let speed = null;
document.addEventListener("change", (event) => {
  if (event.target.id === "timeline-speed") speed = event.target.value;
});
document.body.addEventListener("htmx:afterSwap", () => {
  const select = document.getElementById("timeline-speed");
  if (select && speed) select.value = speed;
  if (playing !== null) {
    document.getElementById("timeline-play").textContent = "Pause";
    playNext();
  }
});
