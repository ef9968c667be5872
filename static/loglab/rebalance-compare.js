// The side-by-side of eager, cooperative and KIP-848 rebalancing (#15). A page entry: exports
// nothing. "Play" runs one playhead over the three timelines at once, on one time scale, and
// marks at each moment which bars are being read: the class sees who stops, and for how long.
const root = document.getElementById("compare");
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
// Wall seconds for the whole span: slow enough to follow a heartbeat at a time.
const PLAY_SECONDS = 12;

function playSeconds() {
  const wanted = Number(root.dataset.playSeconds);
  return wanted > 0 ? wanted : PLAY_SECONDS;
}

function show(seconds) {
  const span = Number(root.dataset.spanS);
  const percent = Math.min(100, (100 * seconds) / span);
  for (const head of root.querySelectorAll(".compare-playhead")) head.style.left = `${percent}%`;
  for (const bar of root.querySelectorAll(".compare-bar")) {
    const on = Number(bar.dataset.start) <= seconds && seconds < Number(bar.dataset.end);
    bar.classList.toggle("is-now", on);
  }
  const clock = document.getElementById("compare-clock");
  if (clock) clock.textContent = `${seconds.toFixed(1)} s`;
}

function play() {
  const span = Number(root.dataset.spanS);
  root.classList.add("is-playing");
  if (reducedMotion.matches) {
    show(span);
    return;
  }
  const started = performance.now();
  const frame = (now) => {
    const seconds = Math.min(span, ((now - started) / 1000) * (span / playSeconds()));
    show(seconds);
    if (seconds < span) requestAnimationFrame(frame);
    else root.classList.remove("is-playing");
  };
  requestAnimationFrame(frame);
}

if (root) {
  document.getElementById("compare-play")?.addEventListener("click", play);
  show(0);
}
