// Seva's chat widget. A shop embeds it with one tag:
//
//   <script src="https://help.example.com/widget.js" data-key="w_..." async></script>
//
// It draws a launcher and a chat panel inside a shadow root (the shop's styles cannot reach
// in, and its styles cannot leak out), talks to Seva over one WebSocket, and keeps the chat
// across page loads (the visitor's token in localStorage). Nothing is lost or doubled across
// reconnects: every message the visitor writes carries its own id and is re-sent until the
// server echoes it; on reconnecting the widget asks for everything after the newest message it
// shows, and ignores ids it already has.

import { catalogue } from "./i18n.js";

const script = document.currentScript;
const key = script && script.dataset.key;
if (key && !window.__sevaChat) {
  window.__sevaChat = true;
  start(script, key);
}

function start(script, key) {
  const base = new URL(script.src, location.href);
  const lang = (script.dataset.lang || document.documentElement.lang || navigator.language || "en")
    .slice(0, 2)
    .toLowerCase();
  const t = catalogue(lang);
  const storeKey = "seva-chat:" + key;
  // A shopper the shop's site signed in: its server signed their id with the widget's secret.
  const data = script.dataset;
  const identity = data.userId && data.userHash
    ? { id: data.userId, email: data.userEmail || null, name: data.userName || null, hash: data.userHash }
    : null;
  const saved = load();

  const host = document.createElement("div");
  host.id = "seva-chat";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>${css()}</style>
    <div class="seva" dir="${t.dir}" lang="${t.lang}">
      <button class="launcher" part="launcher" aria-expanded="false">${esc(t.open)}</button>
      <section class="panel" hidden role="dialog" aria-label="${esc(t.title)}">
        <header><span class="title">${esc(t.title)}</span><button class="close" aria-label="${esc(t.close)}">×</button></header>
        <p class="state" aria-live="polite"></p>
        <ol class="messages" aria-live="polite"></ol>
        <form class="prechat" hidden>
          <input name="name" autocomplete="name" placeholder="${esc(t.name)}">
          <input name="email" type="email" autocomplete="email" placeholder="${esc(t.email)}">
        </form>
        <form class="away" hidden>
          <p class="away-text" role="status"></p>
          <div class="row"><input name="email" type="email" autocomplete="email" dir="ltr" placeholder="${esc(t.awayEmail)}">
          <button type="submit">${esc(t.awaySave)}</button></div>
        </form>
        <form class="compose">
          <textarea name="text" rows="2" placeholder="${esc(t.placeholder)}" dir="auto"></textarea>
          <button type="submit">${esc(t.send)}</button>
        </form>
      </section>
    </div>`;
  document.body.appendChild(host);
  const $ = (selector) => root.querySelector(selector);
  const panel = $(".panel");
  const list = $(".messages");
  const state = $(".state");
  const prechat = $(".prechat");
  const compose = $(".compose");
  const textarea = compose.elements.text;

  let socket = null;
  let token = saved.token || null;
  let lastId = 0;
  let welcomed = false;
  let retry = 1000;
  let asks = "none";
  // Nobody answered in time: the widget says so, and offers to continue by email.
  let awayAfter = 120;
  let awayTimer = null;
  let emailGiven = !!(saved.emailGiven || (identity && identity.email));
  // Outside the brand's business hours: said at once, with the next opening if known.
  let closed = null;
  const away = $(".away");
  const shown = new Set();
  // Messages written but not yet echoed by the server, oldest first: re-sent on reconnect.
  let pending = saved.pending || [];

  function load() {
    try {
      return JSON.parse(localStorage.getItem(storeKey) || "{}");
    } catch (_) {
      return {};
    }
  }
  function save() {
    try {
      localStorage.setItem(storeKey, JSON.stringify({ token, pending, emailGiven }));
    } catch (_) {
      /* private mode: the chat lasts as long as the page */
    }
  }

  $(".launcher").addEventListener("click", () => toggle(true));
  $(".close").addEventListener("click", () => toggle(false));
  function toggle(open) {
    panel.hidden = !open;
    $(".launcher").setAttribute("aria-expanded", String(open));
    if (open) {
      connect();
      textarea.focus();
      list.scrollTop = list.scrollHeight;
    }
  }

  compose.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textarea.value.trim();
    if (!text) return;
    const message = { type: "send", client_id: newId(), text };
    if (asks !== "none" && lastId === 0) {
      message.name = prechat.elements.name.value.trim() || null;
      message.email = prechat.elements.email.value.trim() || null;
      if (message.email) emailGiven = true;
    }
    pending.push(message);
    save();
    show({ id: null, client_id: message.client_id, from: "visitor", text, pending: true });
    textarea.value = "";
    transmit(message);
  });
  // Tell the agent the visitor is typing, at most every three seconds.
  let typingSent = 0;
  textarea.addEventListener("input", () => {
    if (lastId > 0 && Date.now() - typingSent > 3000 && socket && welcomed) {
      typingSent = Date.now();
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      compose.requestSubmit();
    }
  });

  away.addEventListener("submit", (event) => {
    event.preventDefault();
    const email = away.elements.email.value.trim();
    if (email && socket && welcomed) socket.send(JSON.stringify({ type: "email", email }));
  });
  // Waits for an agent after the visitor's message sent at `at`; an agent's answer stops it.
  function waitForAgent(at) {
    if (awayTimer || closed) return;
    const left = Math.max(0, awayAfter * 1000 - (Date.now() - Date.parse(at)));
    awayTimer = setTimeout(showAway, left);
  }
  function showAway() {
    let text = emailGiven ? t.emailSaved : t.away;
    if (closed) {
      const when = closed.opensAt ? whenText(closed.opensAt) : null;
      text = (when ? t.closedUntil.replace("{when}", when) : t.closed) + (emailGiven ? " " + t.emailSaved : "");
    }
    away.querySelector(".away-text").textContent = text;
    // An address can join the chat only once it exists: after the visitor's first message.
    away.querySelector(".row").hidden = emailGiven || lastId === 0;
    away.hidden = false;
  }
  // The next opening in the visitor's own clock and language: "Saturday 09:00", with the date
  // when it is a week or more away (after a long holiday).
  function whenText(iso) {
    const at = new Date(iso);
    const options = { weekday: "long", hour: "numeric", minute: "2-digit" };
    if (at - Date.now() > 6 * 86400000) Object.assign(options, { day: "numeric", month: "long" });
    try {
      return new Intl.DateTimeFormat(t.lang, options).format(at);
    } catch (_) {
      return null;
    }
  }
  // At the opening time the closed notice goes (timers cannot wait beyond about 24 days).
  let openTimer = null;
  function openAt(iso) {
    clearTimeout(openTimer);
    const wait = iso ? Date.parse(iso) - Date.now() : -1;
    if (wait > 0 && wait < 2147483647) {
      openTimer = setTimeout(() => {
        closed = null;
        away.hidden = true;
      }, wait);
    }
  }
  // An agent's message ends the wait; the closed notice stays (replayed answers are old news).
  function answered() {
    clearTimeout(awayTimer);
    awayTimer = null;
    if (!closed) away.hidden = true;
  }

  function transmit(message) {
    if (socket && socket.readyState === 1 && welcomed) socket.send(JSON.stringify(message));
  }

  function connect() {
    if (socket) return;
    const url = new URL("/widget/" + encodeURIComponent(key) + "/ws", base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    state.textContent = t.connecting;
    socket = new WebSocket(url);
    socket.onopen = () => socket.send(JSON.stringify({ type: "hello", token, after: lastId, identity }));
    socket.onmessage = (event) => receive(JSON.parse(event.data));
    socket.onclose = () => {
      socket = null;
      welcomed = false;
      state.textContent = t.reconnecting;
      // Back off up to 30 s; a page in the background keeps trying, slowly.
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  function receive(frame) {
    if (frame.type === "welcome") {
      welcomed = true;
      retry = 1000;
      token = frame.token;
      asks = frame.prechat || "none";
      awayAfter = frame.away_after || awayAfter;
      closed = frame.open === false ? { opensAt: frame.opens_at || null } : null;
      if (closed) {
        showAway();
        openAt(closed.opensAt);
      } else if (!awayTimer) away.hidden = true;
      save();
      state.textContent = "";
      if (frame.color) root.host.style.setProperty("--seva-color", frame.color);
      if (frame.greeting && !list.querySelector(".greeting")) {
        const li = document.createElement("li");
        li.className = "greeting agent";
        li.textContent = frame.greeting;
        list.prepend(li);
      }
      prechat.hidden = !(lastId === 0 && asks !== "none");
      prechat.elements.name.hidden = !asks.includes("name");
      prechat.elements.email.hidden = !asks.includes("email");
      pending.forEach(transmit);
    } else if (frame.type === "message") {
      if (frame.client_id) {
        pending = pending.filter((m) => m.client_id !== frame.client_id);
        save();
      }
      lastId = Math.max(lastId, frame.id);
      prechat.hidden = true;
      if (frame.from === "agent") answered();
      else if (closed) showAway();
      else waitForAgent(frame.at);
      show(frame);
    } else if (frame.type === "email_saved") {
      emailGiven = frame.ok;
      save();
      showAway();
    } else if (frame.type === "survey") {
      showSurvey(frame);
    } else if (frame.type === "rated") {
      const box = list.querySelector(`.survey[data-survey="${cssEscape(frame.survey)}"]`);
      if (box) box.querySelector(".survey-state").textContent = frame.score == null ? t.surveyRefused : t.surveyThanks;
    } else if (frame.type === "typing") {
      state.textContent = frame.active ? t.typing : "";
    } else if (frame.type === "error") {
      state.textContent = t.errors[frame.code] || t.errors.other;
      if (frame.code !== "rate_limited") {
        // The server refused it for good: stop re-sending it.
        pending = pending.slice(1);
        save();
      }
    }
  }

  function show(frame) {
    if (frame.id && shown.has(frame.id)) return;
    let li = frame.client_id && list.querySelector(`[data-client="${cssEscape(frame.client_id)}"]`);
    if (!li) {
      li = document.createElement("li");
      list.appendChild(li);
    }
    if (frame.id) {
      shown.add(frame.id);
      li.dataset.id = frame.id;
    }
    if (frame.client_id) li.dataset.client = frame.client_id;
    li.className = (frame.from === "visitor" ? "visitor" : "agent") + (frame.pending ? " pending" : "");
    li.setAttribute("dir", "auto");
    li.textContent = frame.text;
    if (frame.author) li.title = frame.author;
    list.scrollTop = list.scrollHeight;
  }

  // The chat was resolved: how did it go? One button per score; a click records it.
  function showSurvey(frame) {
    if (list.querySelector(`.survey[data-survey="${cssEscape(frame.id)}"]`)) return;
    const words = t.survey[frame.kind];
    if (!words) return;
    const li = document.createElement("li");
    li.className = "survey agent";
    li.dataset.survey = frame.id;
    const question = document.createElement("p");
    question.textContent = words.question.replace("{brand}", frame.brand || "");
    const scores = document.createElement("div");
    scores.className = "scores";
    scores.setAttribute("dir", "ltr");
    for (let score = frame.low; score <= frame.high; score++) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.score = score;
      button.textContent = number(score);
      button.addEventListener("click", () => {
        if (!socket || !welcomed) return;
        socket.send(JSON.stringify({ type: "rate", survey: frame.id, kind: frame.kind, score }));
        scores.querySelectorAll("button").forEach((b) => b.classList.toggle("chosen", b === button));
      });
      scores.appendChild(button);
    }
    const ends = document.createElement("p");
    ends.className = "ends";
    ends.textContent = `${number(frame.low)} ${words.low} · ${number(frame.high)} ${words.high}`;
    const result = document.createElement("p");
    result.className = "survey-state";
    li.append(question, scores, ends, result);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }
  function number(n) {
    try {
      return new Intl.NumberFormat(t.lang).format(n);
    } catch (_) {
      return String(n);
    }
  }

  // A returning visitor's chat reconnects at once.
  if (token) connect();
}

function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}

function cssEscape(text) {
  return String(text).replace(/[^a-zA-Z0-9_-]/g, "");
}

function css() {
  return `
  :host { all: initial; --seva-color: #1a73e8; }
  .seva { position: fixed; inset-block-end: 16px; inset-inline-end: 16px; z-index: 2147483000;
          font: 14px/1.4 system-ui, "Vazirmatn", "Noto Sans Devanagari", sans-serif; color: #202124; }
  .launcher { background: var(--seva-color); color: #fff; border: 0; border-radius: 24px;
              padding: 12px 18px; font: inherit; cursor: pointer; box-shadow: 0 2px 8px #0004; }
  .panel { position: absolute; inset-block-end: 56px; inset-inline-end: 0; width: 320px;
           max-width: calc(100vw - 32px); background: #fff; border-radius: 12px;
           box-shadow: 0 4px 24px #0005; display: flex; flex-direction: column; overflow: hidden; }
  .panel[hidden] { display: none; }
  header { background: var(--seva-color); color: #fff; padding: 10px 14px; display: flex;
           justify-content: space-between; align-items: center; }
  .close { background: none; border: 0; color: inherit; font-size: 20px; cursor: pointer; }
  .state { margin: 0; padding-inline: 14px; color: #5f6368; font-size: 12px; min-height: 1em; }
  .messages { list-style: none; margin: 0; padding: 8px 12px; height: 280px; overflow-y: auto;
              display: flex; flex-direction: column; }
  .messages li { margin: 6px 0; padding: 8px 10px; border-radius: 10px; max-width: 80%; width: fit-content;
                 white-space: pre-wrap; overflow-wrap: anywhere; }
  /* The panel's direction decides the sides (each bubble's text has its own, dir=auto). */
  .agent { background: #f1f3f4; align-self: flex-start; }
  .visitor { background: var(--seva-color); color: #fff; align-self: flex-end; }
  .pending { opacity: .6; }
  .survey p { margin: 0 0 6px; }
  .survey .scores { display: flex; flex-wrap: wrap; gap: 4px; }
  .survey button { min-width: 28px; border: 1px solid #dadce0; border-radius: 6px; background: #fff;
                   font: inherit; cursor: pointer; padding: 2px 6px; }
  .survey button.chosen { background: var(--seva-color); color: #fff; }
  .survey .ends { font-size: 12px; color: #5f6368; margin-top: 4px; }
  form { display: flex; gap: 6px; padding: 8px 12px; border-block-start: 1px solid #e0e0e0; }
  .prechat { flex-direction: column; }
  input, textarea { font: inherit; flex: 1; border: 1px solid #dadce0; border-radius: 8px;
                    padding: 6px 8px; resize: none; }
  input[hidden], form[hidden], div[hidden] { display: none; }
  .away { flex-direction: column; background: #fef7e0; }
  .away p { margin: 0; }
  .away .row { display: flex; gap: 6px; }
  .away button { background: var(--seva-color); color: #fff; border: 0; border-radius: 8px;
                 padding: 0 12px; font: inherit; cursor: pointer; }
  .compose button { background: var(--seva-color); color: #fff; border: 0; border-radius: 8px;
                    padding: 0 12px; font: inherit; cursor: pointer; }`;
}
