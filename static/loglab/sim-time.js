// The room's simulated time as the engine's format_time writes it ("day 2, 14:03:20", the
// first day is day 1): pages tick their clocks locally between the server's events.
export function formatSimTime(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  return `day ${Math.floor(total / 86400) + 1}, ${pad(h)}:${pad(m)}:${pad(total % 60)}`;
}
