// Entry of the lesson pages (lesson_board.html, lesson_queues.html): the goal panel beside
// the real board or queues page, whose own entry runs the room's socket. Exports nothing.
//
// The panel is checked on the server. After every room event (board.js dispatches
// `loglab:event` on the board) and after the learner's own form posts, it is refetched, a
// little later and at most one fetch at a time; only the sections whose state changed are
// swapped, so a half-answered quiz or an open hint survives a busy room. "Fill in" puts a
// solution step into the board's own form and focuses its button: the learner presses it.
// In a classroom the same page follows the instructor: lesson events refetch the moment
// (follow-me itself is the board's: board.js hands room.follow to follow-room.js).
import { EVENT } from "./room-socket.js";

const REFRESH_DELAY_MS = 350;

function panel() {
  return document.getElementById("lesson-panel");
}

// --- refreshing the goal panel ------------------------------------------------------------

let timer = null;
let inFlight = false;
let again = false;

// A throttle, not a debounce: a running clock sends a step every 100 ms, and a debounce
// would then never fire while it runs.
function scheduleRefresh() {
  if (!panel()?.dataset.panelUrl || timer) return;
  timer = setTimeout(() => {
    timer = null;
    refresh();
  }, REFRESH_DELAY_MS);
}

async function refresh() {
  const current = panel();
  if (!current) return;
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    const response = await fetch(current.dataset.panelUrl, { headers: { "HX-Request": "true" } });
    if (!response.ok) return;
    // Server-rendered, autoescaped template output.
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("lesson-panel");
    if (fresh) swapChanged(panel(), fresh);
  } catch {
    // Offline for a moment: the next event tries again.
  } finally {
    inFlight = false;
    if (again) {
      again = false;
      scheduleRefresh();
    }
  }
}

function sections(root) {
  return [...root.querySelectorAll("[data-section]")];
}

// Swap only what changed; when the set of sections differs (the lesson was just completed),
// the whole panel, keeping the reader's scroll position.
function swapChanged(current, fresh) {
  const now = sections(current);
  const next = sections(fresh);
  const sameShape = now.length === next.length && now.every((el, i) => el.dataset.section === next[i].dataset.section);
  const justCompleted = current.dataset.complete !== fresh.dataset.complete;
  if (!sameShape || justCompleted) {
    const scroll = current.scrollTop;
    current.replaceWith(fresh);
    fresh.scrollTop = scroll;
    if (window.htmx) window.htmx.process(fresh);
    if (justCompleted && fresh.dataset.complete === "1") announceComplete(fresh);
    return;
  }
  now.forEach((el, i) => {
    if (el.dataset.state === next[i].dataset.state) return;
    el.replaceWith(next[i]);
    if (window.htmx) window.htmx.process(next[i]);
    flash(next[i]);
  });
}

function flash(el) {
  for (const goal of el.querySelectorAll(".goal.is-met")) goal.classList.add("just-changed");
}

function announceComplete(root) {
  const done = root.querySelector(".lesson-complete");
  if (!done) return;
  done.classList.add("is-new");
  done.scrollIntoView({ block: "nearest", behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
}

// --- "Fill in": a solution step into the page's own form ----------------------------------

function byData(selector, name, value) {
  return `${selector}[data-${name}="${CSS.escape(String(value))}"]`;
}

function formFor(fill) {
  const q = (selector) => document.querySelector(selector);
  switch (fill.form) {
    case "produce": return q(".produce-form");
    case "topic_new": return q('form[action$="/topics/new/"]');
    case "partitions_add": return q(`${byData(".topic", "topic", fill.topic)} form[action$="/partitions/"]`);
    case "topic_config": return q(`${byData(".topic", "topic", fill.topic)} form[action$="/config/"]`);
    case "group_new": return q('form[action$="/groups/new/"]');
    case "member_new": return q(`${byData(".group", "group", fill.group)} form.add-member`);
    case "offsets_reset": return q(`${byData(".group", "group", fill.group)} form[action$="/reset/"]`);
    case "clock": return q("form.clock-controls");
    case "broker": return q(`${byData("#brokers .broker", "broker", fill.broker)} form.broker-controls`);
    case "brokers_count": return q('form[action$="/brokers/count/"]');
    case "leaders_elect": return q('form[action$="/brokers/elect/"]');
    case "member": {
      const live = [...document.querySelectorAll(`${byData(".group", "group", fill.group)} .member:not(.is-crashed)`)];
      const member = fill.consumer === "last" ? live.at(-1) : live[Number(fill.consumer) - 1];
      return member?.querySelector("form") ?? null;
    }
    case "sqs_send": return q('form[action$="/sqs/send/"]');
    case "sqs_receive": return q('form[action$="/sqs/receive/"]');
    case "sqs_delete": {
      for (const row of document.querySelectorAll("tr[data-message-id]")) {
        const group = row.querySelector('[data-label="group"]')?.textContent.trim();
        const form = row.querySelector('form[action$="/sqs/delete/"]');
        const queue = form?.querySelector("input[name=queue]")?.value;
        if (form && group === fill.group && queue === fill.queue) return form;
      }
      return null;
    }
    case "classic_consume": {
      // Deliveries waiting for an ack come first; without any, start a consumer.
      const ack = document.querySelector(`${byData("section.cqueue", "classic-queue", fill.queue)} form[action$="/classic/ack/"]`);
      if (ack) {
        fill.acking = true;
        return ack;
      }
      return q('form[action$="/classic/consume/"]');
    }
    case "classic_queue_new": return q('form[action$="/classic/queues/new/"]');
    case "classic_exchange_new": return q('form[action$="/classic/exchanges/new/"]');
    case "classic_bind": return q('form[action$="/classic/bind/"]');
    case "classic_publish": return q('form[action$="/classic/publish/"]');
    case "queues_clock": return q('form[action$="/clock/step/"]');
    default: return null;
  }
}

function setField(form, name, value) {
  const fields = [...form.querySelectorAll(`[name="${CSS.escape(name)}"]`)];
  if (!fields.length && name === "step_ms") {
    // The board's clock form steps 1 s unless told otherwise: the step says how far.
    const hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = name;
    hidden.dataset.filled = "1";
    form.append(hidden);
    fields.push(hidden);
  }
  for (const field of fields) {
    if (field.type === "checkbox" || field.type === "radio") {
      const wanted = Array.isArray(value) ? value.map(String) : [String(value)];
      field.checked = wanted.includes(field.value) || (wanted.includes("1") && field.value === "1");
    } else if (field.tagName === "SELECT") {
      const wanted = String(value);
      if (![...field.options].some((o) => (o.value || o.textContent) === wanted)) {
        // A topic made a moment ago may not be in the list yet.
        const option = document.createElement("option");
        option.textContent = wanted;
        field.append(option);
      }
      field.value = wanted;
    } else {
      field.value = value === null || value === undefined ? "" : String(value);
    }
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

function submitButton(form, fill) {
  if (fill.button) return form.querySelector(`button[value="${CSS.escape(fill.button)}"]`);
  return form.querySelector('button[type=submit], button:not([type])');
}

function fillIn(trigger) {
  let fill;
  try {
    fill = JSON.parse(trigger.dataset.fill);
  } catch {
    return;
  }
  const form = formFor(fill);
  const note = trigger.parentElement.querySelector(".fill-note") ?? document.createElement("p");
  note.className = "fill-note";
  note.setAttribute("role", "status");
  if (!form) {
    note.textContent = "That control is not on the board right now (undo or reset if a step went astray).";
    trigger.after(note);
    return;
  }
  for (let el = form.parentElement; el; el = el.parentElement) {
    if (el.tagName === "DETAILS") el.open = true;
  }
  if (form.tagName === "FORM" && form.closest("details")) form.closest("details").open = true;
  if (!fill.acking) {
    for (const [name, value] of Object.entries(fill.fields || {})) setField(form, name, value);
  }
  const button = submitButton(form, fill);
  if (fill.form === "clock" && button) {
    const seconds = Number(fill.fields.step_ms) / 1000;
    button.dataset.originalText ??= button.textContent;
    button.textContent = seconds >= 1 ? `Step ${formatSeconds(seconds)}` : button.dataset.originalText;
  }
  for (const old of document.querySelectorAll(".is-filled")) old.classList.remove("is-filled");
  form.classList.add("is-filled");
  button?.classList.add("is-filled");
  form.scrollIntoView({ block: "center", behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
  button?.focus({ preventScroll: true });
  const times = Number(fill.times || 1);
  if (fill.form === "classic_consume") {
    note.textContent = fill.acking
      ? "Press Ack on each delivery (Fill in again finds the next one)."
      : "Filled in: press “Consume”, then Fill in again to ack what it receives.";
  } else {
    note.textContent = button
      ? `Filled in: press “${button.textContent.trim()}”${times > 1 ? ` ${times} times` : ""}.`
      : "Filled in.";
  }
  trigger.after(note);
}

function formatSeconds(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0 && seconds >= 60) return `${seconds / 60} min`;
  return `${seconds} s`;
}

// A filled clock step lasts one press; after it, the Step button steps 1 s again.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt?.closest?.("form");
  if (form?.classList.contains("clock-controls")) {
    form.querySelector("input[data-filled]")?.remove();
    const button = form.querySelector("button[value=step]");
    if (button?.dataset.originalText) button.textContent = button.dataset.originalText;
  }
  if (form?.classList.contains("is-filled")) form.classList.remove("is-filled");
  // The learner's own action changed the room: check the goals again.
  if (!event.detail.elt?.closest?.("#lesson-panel")) scheduleRefresh();
});

document.addEventListener("click", (event) => {
  const trigger = event.target.closest?.("[data-fill]");
  if (trigger) fillIn(trigger);
});

// --- room events --------------------------------------------------------------------------

const CLASS_LESSON_EVENTS = new Set([EVENT.LESSON_STARTED, EVENT.LESSON_STAGE, EVENT.LESSON_PREDICTED, EVENT.RESYNC]);

function onRoomEvent(event) {
  const detail = event.detail || {};
  if (CLASS_LESSON_EVENTS.has(detail.type)) {
    // The classroom's lesson moved on (or the board caught up after missing some events, which
    // may have been lesson ones): the class panel redraws itself.
    document.body.dispatchEvent(new CustomEvent("loglab:lesson"));
  }
  scheduleRefresh();
}

const board = document.getElementById("board");
board?.addEventListener("loglab:event", onRoomEvent);
// The queues page redraws on its own signal; the panel follows it.
document.addEventListener("loglab:queues-changed", scheduleRefresh);
