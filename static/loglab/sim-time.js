// The room's simulated time as the engine's format_time writes it ("day 2, 14:03:20", the
// first day is day 1): pages tick their clocks locally between the server's events.
export function formatSimTime(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  return `day ${Math.floor(total / 86400) + 1}, ${pad(h)}:${pad(m)}:${pad(total % 60)}`;
}

// A stretch of room time in words, as the engine's format_duration keeps it: the largest unit
// and the one below ("40 s", "1 min 20 s"). Summaries say how much ROOM time they cover.
export function formatRoomSpan(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  if (total < 60) return `${total} s`;
  if (total < 3600) {
    const m = Math.floor(total / 60);
    return total % 60 ? `${m} min ${total % 60} s` : `${m} min`;
  }
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

// The clock's speed as the pages write it beside room time: "20x", "0.25x".
export function formatSpeed(speed) {
  const value = Number(speed);
  return `${Number.isFinite(value) ? Number(value.toFixed(2)) : 1}x`;
}
