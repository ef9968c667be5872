// The "Connect your own code" card is on the board and on the queues page: its endpoints and
// examples (`data-copy`) copy their text on click, so nobody retypes a URL from a projector.
// Importing this module does nothing; a page entry calls copyOnClick().

export function copyOnClick(root = document) {
  root.addEventListener("click", (event) => {
    const target = event.target.closest?.("[data-copy]");
    if (!target || !navigator.clipboard) return;
    navigator.clipboard.writeText(target.textContent.trim()).then(() => {
      target.classList.add("is-copied");
      setTimeout(() => target.classList.remove("is-copied"), 900);
    }, () => {});
  });
}
