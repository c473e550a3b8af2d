// The comment panel of the live and watch pages: history, a WebSocket for live events and
// posting, likes and reports, moderator controls, and the danmaku overlay on highlights.
// Comment text and handles only ever reach the page through textContent (dom.js's h()).
import { api, ApiError } from "./api.js";
import { t, formatTime } from "./i18n.js";
import { h } from "./dom.js";

const TOKEN_KEY = "courtside.session";
const MAX_SHOWN = 200; // the list keeps the newest; older ones are in the history API
const MAX_LENGTH = 300;
const HISTORY = 50;
// The server dropped us for falling behind (4008) or lost its fan-out for a moment (1012):
// history has what we missed, so resume with ?after= at once.
const RESUME_NOW = new Set([4008, 1012]);
const RETRY_MS = [1000, 2000, 5000, 10000, 15000];
const TIMEOUT_S = 600;
const DANMAKU_PER_S = 3;
const DANMAKU_LANES = 6;
const MODERATORS = new Set(["moderator", "admin"]);
// Close codes after which coming back would be refused the same way: no reconnect.
// 4403 forbidden, 4404 no such channel, 4451 not available where the viewer is.
const FINAL_CLOSES = new Set([1008, 4403, 4404, 4451]);
const BAD_TOKEN = 4401; // an expired session: go on reading anonymously

export function sessionToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: signed in for this page only
  }
}

function authHeaders(panel) {
  return panel.token ? { Authorization: `Bearer ${panel.token}` } : {};
}

/** Mount the panel for ``channel`` (the item's id) under ``host``; ``live`` says whether the
 * item is a live stream (highlights get the overlay); ``mediaMs()`` is where the fan is in the
 * media when posting (live: the program date time in epoch ms; highlights: the position). */
export async function mountComments(channel, { host, video, stage, live, mediaMs }) {
  const panel = {
    channel, video, live, mediaMs, token: sessionToken(), me: null, socket: null, lastId: null, retries: 0,
    nodes: new Map(), closed: false, mode: null, danmaku: null, pending: new Map(), moderator: null,
  };
  window.courtsideComments = panel; // for the browser tests and for anyone debugging
  panel.ui = buildPanel(panel);
  host.insertBefore(panel.ui.root, host.querySelector("#shortcuts")); // null: at the end
  if (!live && stage) panel.danmaku = setupDanmaku(panel, stage);
  await whoAmI(panel);
  await loadHistory(panel);
  connect(panel);
  return panel;
}

// --- the panel's elements -------------------------------------------------------------------

function buildPanel(panel) {
  const list = h("ol", { id: "comment-list", class: "comment-list", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": t("commentsList"), tabindex: "0" });
  const status = h("p", { id: "comment-status", class: "comment-status", role: "status", "aria-live": "polite" });
  const mode = h("p", { id: "comment-mode", class: "comment-mode meta", hidden: true });
  const alert = h("p", { id: "comment-error", class: "comment-error", role: "alert", hidden: true });
  const root = h("section", { id: "comments", class: "comments", "aria-labelledby": "comments-heading" },
    h("h2", { id: "comments-heading", text: t("comments") }), status, mode, list, alert,
    postForm(panel), signInForm(panel));
  return { root, list, status, mode, alert };
}

function postForm(panel) {
  const input = h("textarea", { id: "comment-text", name: "text", rows: 2, maxLength: MAX_LENGTH, required: true, autocomplete: "off" });
  const count = h("span", { id: "comment-count", class: "meta", "aria-live": "off", text: `0 / ${MAX_LENGTH}` });
  input.addEventListener("input", () => { count.textContent = `${input.value.length} / ${MAX_LENGTH}`; });
  // Enter sends, Shift+Enter makes a new line: the chat convention.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  const who = h("span", { id: "comment-who", class: "meta" });
  const signOut = h("button", { type: "button", id: "comment-sign-out", text: t("signOut"), onclick: () => doSignOut(panel) });
  const form = h("form", { id: "comment-form", class: "comment-form", hidden: true },
    h("label", { for: "comment-text", text: t("yourComment") }), input,
    h("div", { class: "comment-form-row" }, count, h("button", { type: "submit", id: "comment-send", text: t("send") })),
    h("div", { class: "comment-form-row" }, who, signOut));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sendPost(panel, input.value)) {
      input.value = "";
      count.textContent = `0 / ${MAX_LENGTH}`;
    }
  });
  return form;
}

function signInForm(panel) {
  const email = h("input", { id: "sign-in-email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "sign-in-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { id: "sign-in-form", class: "sign-in", hidden: true, "aria-labelledby": "sign-in-heading" },
    h("p", { id: "sign-in-heading", text: t("signInToComment") }),
    h("label", { for: "sign-in-email", text: t("email") }), email,
    h("label", { for: "sign-in-password", text: t("password") }), password,
    h("button", { type: "submit", id: "sign-in-submit", text: t("signIn") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await api("/v1/sessions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email: email.value, password: password.value }) });
      panel.token = session.token;
      storeToken(session.token);
      password.value = "";
      await whoAmI(panel);
      await loadHistory(panel, 1); // whether this account moderates the channel
      reconnect(panel); // the socket posts as the signed-in fan from now on
    } catch (error) {
      showError(panel, error.message || t("signInFailed"));
    }
  });
  return form;
}

async function whoAmI(panel) {
  panel.me = null;
  if (panel.token) {
    try {
      const me = await api("/v1/me", { headers: authHeaders(panel) });
      if (me.kind === "user") panel.me = me;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) storeToken(""); // expired
    }
    if (!panel.me) panel.token = "";
  }
  const root = panel.ui.root;
  root.querySelector("#comment-form").hidden = !panel.me;
  root.querySelector("#sign-in-form").hidden = Boolean(panel.me);
  root.querySelector("#comment-who").textContent = panel.me ? t("signedInAs", { handle: panel.me.handle }) : "";
  panel.moderator = null;
  paintModeration(panel);
}

async function doSignOut(panel) {
  await fetch("/v1/sessions/current", { method: "DELETE", headers: authHeaders(panel) }).catch(() => {});
  panel.token = "";
  storeToken("");
  await whoAmI(panel);
  reconnect(panel);
}

// The history answer says whether the caller moderates this channel (moderators, admins and
// the league's partners); the role is the guess until it has answered.
function isModerator(panel) {
  if (!panel.me) return false;
  return panel.moderator ?? MODERATORS.has(panel.me.role);
}

function paintModeration(panel) {
  panel.ui.root.classList.toggle("moderating", isModerator(panel));
  for (const node of panel.nodes.values()) paintControls(panel, node);
}

// --- messages ---------------------------------------------------------------------------------

function messageNode(panel, message) {
  const author = message.author || {};
  const badge = author.badge ? h("span", { class: "comment-badge badge", "data-badge": author.badge, text: badgeLabel(author.badge) }) : null;
  const time = message.server_time ? h("time", { class: "meta", dateTime: message.server_time, text: formatTime(message.server_time) }) : null;
  const likes = h("button", { type: "button", class: "comment-like", "aria-pressed": "false", onclick: () => like(panel, message.id) });
  const report = h("button", { type: "button", class: "comment-report", text: t("report"), onclick: () => reportMessage(panel, message.id) });
  const tools = h("span", { class: "comment-tools" }, likes, report);
  const li = h("li", { class: "comment", "data-id": message.id },
    h("span", { class: "comment-author", text: author.handle || "?" }), badge, time,
    h("p", { class: "comment-text", text: message.text }), tools);
  const node = { li, message, likes, tools, mod: null };
  paintLikes(node, message.likes || 0);
  paintState(node);
  paintControls(panel, node);
  return node;
}

function badgeLabel(badge) {
  const label = t(`badge_${badge}`);
  return label === `badge_${badge}` ? String(badge) : label;
}

function paintLikes(node, count) {
  node.message.likes = count;
  node.likes.textContent = t("likes", { n: count });
  node.likes.setAttribute("aria-label", t("likeLabel", { n: count }));
}

function paintState(node) {
  const held = node.message.state === "held";
  node.li.classList.toggle("held", held);
  const old = node.li.querySelector(".comment-held");
  if (old) old.remove();
  if (held) node.li.querySelector(".comment-text").before(h("span", { class: "comment-held badge", text: t("heldBadge") }));
}

function paintControls(panel, node) {
  if (node.mod) node.mod.remove();
  node.mod = null;
  if (!isModerator(panel)) return;
  const id = node.message.id;
  const user = node.message.author && node.message.author.id;
  const handle = (node.message.author && node.message.author.handle) || "?";
  const buttons = [
    h("button", { type: "button", class: "mod-delete", text: t("delete"), "aria-label": t("deleteLabel", { handle }), onclick: () => moderate(panel, "DELETE", `/${encodeURIComponent(id)}`) }),
    h("button", { type: "button", class: "mod-timeout", text: t("timeout"), "aria-label": t("timeoutLabel", { handle }), onclick: () => moderate(panel, "POST", "/timeouts", { user_id: user, seconds: TIMEOUT_S }) }),
    h("button", { type: "button", class: "mod-ban", text: t("ban"), "aria-label": t("banLabel", { handle }), onclick: () => confirm(t("banConfirm", { handle })) && moderate(panel, "POST", "/bans", { user_id: user }) }),
  ];
  if (node.message.state === "held") {
    buttons.unshift(h("button", { type: "button", class: "mod-approve", text: t("approve"), onclick: () => moderate(panel, "POST", `/${encodeURIComponent(id)}/approve`) }));
  }
  node.mod = h("span", { class: "comment-mod" }, ...buttons);
  node.tools.append(node.mod);
}

function addMessage(panel, message) {
  if (message.state === "hidden") return removeMessages(panel, [message.id]);
  panel.lastId = message.id;
  const known = panel.nodes.get(message.id);
  if (known) {
    known.message.state = message.state;
    paintState(known);
    paintControls(panel, known);
    return;
  }
  const node = messageNode(panel, message);
  panel.nodes.set(message.id, node);
  const follow = nearBottom(panel.ui.list);
  panel.ui.list.append(node.li);
  while (panel.ui.list.children.length > MAX_SHOWN) {
    const first = panel.ui.list.firstElementChild;
    panel.nodes.delete(first.dataset.id);
    first.remove();
  }
  if (follow) panel.ui.list.scrollTop = panel.ui.list.scrollHeight;
  // New comments fly over the video as they arrive too (the replay brings the older ones).
  if (panel.danmaku && panel.danmaku.liveArrivals && message.state === "visible") panel.danmaku.show(message);
}

// Keep following new comments unless the fan scrolled up to read older ones.
function nearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function removeMessages(panel, ids) {
  for (const id of ids) {
    const node = panel.nodes.get(id);
    if (node) node.li.remove();
    panel.nodes.delete(id);
    if (panel.danmaku) panel.danmaku.remove(id);
  }
}

async function loadHistory(panel, limit = HISTORY) {
  const include = isModerator(panel) ? "&include=held" : "";
  try {
    const page = await api(`/v1/comments/${encodeURIComponent(panel.channel)}?limit=${limit}${include}`, { headers: authHeaders(panel) });
    if (page.viewer && typeof page.viewer.moderator === "boolean" && panel.me) {
      panel.moderator = page.viewer.moderator;
      paintModeration(panel);
    }
    if (page.settings) paintMode(panel, page.settings);
    for (const message of page.messages || []) addMessage(panel, message);
    panel.ui.list.scrollTop = panel.ui.list.scrollHeight; // start at the newest
  } catch (error) {
    setStatus(panel, t("commentsUnavailable", { message: error.message }));
  }
}

// --- the socket ---------------------------------------------------------------------------------

function socketUrl(panel) {
  const url = new URL(`/v1/comments/${encodeURIComponent(panel.channel)}/ws`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket: the session token goes in the query.
  if (panel.token) url.searchParams.set("token", panel.token);
  if (panel.lastId) url.searchParams.set("after", panel.lastId);
  return url.href;
}

function connect(panel) {
  const socket = new WebSocket(socketUrl(panel));
  panel.socket = socket;
  socket.addEventListener("open", () => {
    panel.retries = 0;
    setStatus(panel, t("connected"));
  });
  socket.addEventListener("message", (event) => {
    let events;
    try {
      events = JSON.parse(event.data);
    } catch {
      return;
    }
    for (const item of Array.isArray(events) ? events : [events]) applyEvent(panel, item);
  });
  socket.addEventListener("close", (event) => onClose(panel, socket, event));
}

function onClose(panel, socket, event) {
  if (panel.socket !== socket || panel.closed) return; // replaced on purpose
  panel.socket = null;
  if (event.code === BAD_TOKEN && panel.token) {
    storeToken("");
    panel.token = "";
    whoAmI(panel).then(() => connect(panel));
    return;
  }
  if (FINAL_CLOSES.has(event.code)) {
    setStatus(panel, event.reason || t("commentsUnavailable", { message: event.code }));
    return;
  }
  // Back off when coming back fails again, whatever the first reason was.
  const delay = RESUME_NOW.has(event.code) && panel.retries === 0 ? 0 : RETRY_MS[Math.min(panel.retries, RETRY_MS.length - 1)];
  panel.retries += 1;
  setStatus(panel, t("reconnecting"));
  setTimeout(() => { if (!panel.socket && !panel.closed) connect(panel); }, delay);
}

function reconnect(panel) {
  const old = panel.socket;
  panel.socket = null;
  if (old) old.close(1000);
  connect(panel);
}

const HANDLERS = {
  message: (panel, event) => addMessage(panel, event),
  hide: (panel, event) => removeMessages(panel, event.ids || []),
  likes: (panel, event) => {
    const node = panel.nodes.get(event.id);
    if (node) paintLikes(node, event.likes);
  },
  mode: (panel, event) => paintMode(panel, event),
  liked: (panel, event) => {
    const node = panel.nodes.get(event.id);
    if (node && typeof event.likes === "number") paintLikes(node, event.likes);
  },
  reported: (panel) => setStatus(panel, t("reported")),
  // To moderators only: how many fans reported a message.
  report: (panel, event) => {
    const node = panel.nodes.get(event.id);
    if (!node) return;
    const old = node.li.querySelector(".comment-reports");
    if (old) old.remove();
    node.li.querySelector(".comment-author").after(h("span", { class: "comment-reports badge", text: t("reports", { n: event.reports || 1 }) }));
  },
  ack: (panel, event) => {
    panel.pending.delete(event.nonce);
    hideError(panel);
  },
  error: (panel, event) => showError(panel, errorText(event)),
};

function applyEvent(panel, event) {
  const handler = event && HANDLERS[event.type];
  if (handler) handler(panel, event);
}

function paintMode(panel, mode) {
  panel.mode = mode;
  const notes = [];
  if (mode.mode === "closed") notes.push(t("modeClosed"));
  else if (mode.mode === "verified") notes.push(t("modeVerified"));
  else if (mode.mode === "account_age") notes.push(t("modeAccountAge", { min: Math.ceil((mode.min_account_age_s || 0) / 60) }));
  if (mode.slow_mode_s) notes.push(t("modeSlow", { s: mode.slow_mode_s }));
  panel.ui.mode.textContent = notes.join(" · ");
  panel.ui.mode.hidden = !notes.length;
  const send = panel.ui.root.querySelector("#comment-send");
  send.disabled = mode.mode === "closed" && !isModerator(panel);
}

/** The refusal in the fan's language (the server's sentence for codes we do not know). */
export function errorText(event) {
  const seconds = Math.max(1, Math.ceil((event.retry_after_ms || 0) / 1000));
  const known = {
    rate_limited: t("errRateLimited", { s: seconds }),
    slow_mode: t("errSlowMode", { s: seconds }),
    channel_closed: t("errClosed"),
    banned: t("errBanned"),
    timed_out: t("errTimedOut", { s: seconds }),
    too_long: t("errTooLong", { n: MAX_LENGTH }),
    empty: t("errEmpty"),
    held_for_review: t("errHeld"),
    verified_only: t("modeVerified"),
    account_too_new: t("errTooNew"),
    unauthenticated: t("signInToComment"),
  };
  return known[event.code] || event.message || event.code || t("errUnknown");
}

function sendPost(panel, raw) {
  const text = raw.trim();
  if (!text) return false;
  if (!panel.socket || panel.socket.readyState !== WebSocket.OPEN) {
    showError(panel, t("notConnected"));
    return false;
  }
  const nonce = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  const at = panel.mediaMs ? panel.mediaMs() : null;
  const mediaMs = Number.isFinite(at) && at >= 0 ? Math.round(at) : null;
  panel.pending.set(nonce, text);
  panel.socket.send(JSON.stringify({ type: "post", text, media_ms: mediaMs, nonce }));
  return true;
}

function like(panel, id) {
  if (!panel.me) return showError(panel, t("signInToComment"));
  if (panel.socket && panel.socket.readyState === WebSocket.OPEN) panel.socket.send(JSON.stringify({ type: "like", id }));
  const node = panel.nodes.get(id);
  if (node) node.likes.setAttribute("aria-pressed", "true");
}

function reportMessage(panel, id) {
  if (!panel.me) return showError(panel, t("signInToComment"));
  if (panel.socket && panel.socket.readyState === WebSocket.OPEN) panel.socket.send(JSON.stringify({ type: "report", id, reason: "abuse" }));
}

async function moderate(panel, method, path, body) {
  const options = { method, headers: { ...authHeaders(panel) } };
  if (body) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  try {
    await api(`/v1/comments/${encodeURIComponent(panel.channel)}${path}`, options);
    setStatus(panel, t("done"));
  } catch (error) {
    showError(panel, error.message);
  }
}

function setStatus(panel, text) {
  panel.ui.status.textContent = text;
}

function showError(panel, text) {
  panel.ui.alert.textContent = text;
  panel.ui.alert.hidden = false;
}

function hideError(panel) {
  panel.ui.alert.hidden = true;
  panel.ui.alert.textContent = "";
}

// --- danmaku: comments over the video at their media time (highlights) ---------------------------

function setupDanmaku(panel, stage) {
  const reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const layer = h("div", { id: "danmaku", class: `danmaku${reduced ? " still" : ""}`, "aria-hidden": "true", hidden: true });
  stage.append(layer);
  const toggle = h("input", { id: "danmaku-toggle", type: "checkbox" });
  panel.ui.root.querySelector("h2").after(h("p", { class: "danmaku-switch" }, toggle, h("label", { for: "danmaku-toggle", text: t("danmaku") })));
  const state = { layer, on: false, byBucket: new Map(), shown: new Map(), lane: 0, lastMs: 0, liveArrivals: false, show: (m) => fly(state, m), remove: (id) => land(state, id) };
  toggle.addEventListener("change", async () => {
    state.on = toggle.checked;
    layer.hidden = !state.on;
    state.liveArrivals = state.on;
    if (state.on && !state.byBucket.size) await loadReplay(panel, state);
  });
  panel.video.addEventListener("timeupdate", () => onTime(panel, state));
  panel.video.addEventListener("seeked", () => { state.lastMs = Math.round(panel.video.currentTime * 1000); });
  return state;
}

async function loadReplay(panel, state) {
  const toMs = Math.ceil((panel.video.duration || 3600) * 1000);
  try {
    const replay = await api(`/v1/comments/${encodeURIComponent(panel.channel)}/replay?from_ms=0&to_ms=${toMs}&per_s=${DANMAKU_PER_S}`);
    for (const bucket of replay.buckets || []) {
      for (const message of bucket.messages || []) {
        const second = Math.floor((message.media_ms || 0) / 1000);
        if (!state.byBucket.has(second)) state.byBucket.set(second, []);
        state.byBucket.get(second).push(message);
      }
    }
  } catch {
    // no replay: the overlay shows comments as they arrive
  }
}

function onTime(panel, state) {
  const now = Math.round(panel.video.currentTime * 1000);
  if (!state.on || now < state.lastMs || now - state.lastMs > 2000) {
    state.lastMs = now;
    return;
  }
  for (let second = Math.floor(state.lastMs / 1000); second <= Math.floor(now / 1000); second += 1) {
    for (const message of state.byBucket.get(second) || []) {
      if (message.media_ms > state.lastMs && message.media_ms <= now) fly(state, message);
    }
  }
  state.lastMs = now;
}

function fly(state, message) {
  if (!state.on || state.shown.has(message.id)) return;
  const lane = state.lane;
  state.lane = (state.lane + 1) % DANMAKU_LANES;
  const node = h("span", { class: "danmaku-item", text: message.text });
  node.style.top = `${lane * (100 / DANMAKU_LANES)}%`;
  state.shown.set(message.id, node);
  state.layer.append(node);
  const done = () => land(state, message.id);
  node.addEventListener("animationend", done);
  setTimeout(done, 9000); // reduced motion: no animation ends, the line fades on a timer
}

function land(state, id) {
  const node = state.shown.get(id);
  if (node) node.remove();
  state.shown.delete(id);
}
