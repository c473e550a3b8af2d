// The watch page: hls.js, quality menu, storyboard previews, shortcuts, share, related, views.
import { api, ApiError, leagueOf } from "./api.js";
import { t, formatTime, formatNumber } from "./i18n.js";
import { h, icon, cardList, formatDuration, section } from "./dom.js";
import { loadStoryboard, cueAt, paintCue } from "./storyboard.js";
import { mountComments } from "./comments.js";

const SEEK_STEP_S = 5;
const VIEW_AFTER_S = 5;
const $ = (id) => document.getElementById(id);

/** Play highlight ``id`` on this page; ``page`` receives the related clips. */
export async function showWatch(id, page) {
  $("watch").hidden = false;
  const video = $("video");
  const state = { hls: null, item: null, live: null, cues: [], viewUrl: null, played: 0, lastTime: 0, counted: false };
  window.courtside = state; // for the browser tests and for anyone debugging playback
  setupControls(video, state);
  setupShare();
  const item = await loadItem(id);
  if (item === false) return;
  state.item = item;
  if (item) describe(item, video, page);
  if (!(await startPlayback(id, video, state))) return;
  // The comment channel obeys the item's rights: only for a viewer who may watch it.
  const stage = $("watch").querySelector(".stage");
  // Posts carry where the fan is in the media: the program date time live, else the position.
  const mediaMs = () => (state.live ? state.hls && state.hls.playingDate && state.hls.playingDate.getTime() : video.currentTime * 1000);
  state.comments = await mountComments(id, { host: $("watch"), video, stage, live: Boolean(state.live), mediaMs });
}

async function loadItem(id) {
  try {
    return await api(`/v1/highlights/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 451) {
      unavailable(error);
      return false;
    }
    // Not listed (or no details endpoint): playback has the last word and says why.
    return null;
  }
}

function describe(item, video, page) {
  document.title = `${item.title} — Courtside`;
  $("now-playing").textContent = item.title;
  if (item.lang) $("now-playing").lang = item.lang; // a fallback language is read as such
  $("description").textContent = item.description || "";
  const league = leagueOf(item);
  const meta = [league.name, item.is_live ? "" : formatDuration(item.duration_s)];
  if (item.published_at) meta.push(formatTime(item.published_at));
  if (typeof item.views === "number") meta.push(t("views", { n: formatNumber(item.views) }));
  $("player-meta").textContent = meta.filter(Boolean).join(" · ");
  video.setAttribute("aria-label", t("videoLabel", { title: item.title }));
  if (item.poster_url) video.poster = item.poster_url;
  const related = item.related || [];
  if (related.length) page.append(section("related-heading", t("related"), cardList(related, t("related"))));
}

/** The not-available message: the API's own sentence, and when it will be available. */
function unavailable(error) {
  const box = $("unavailable");
  let text = error.status === 404 ? t("notFound") : error.message || t("notAvailable");
  const from = error.details && error.details.available_from;
  if (from) text += " " + t("availableFrom", { time: formatTime(from) });
  box.replaceChildren(h("p", { text }));
  if (!$("now-playing").textContent) $("now-playing").textContent = t("notAvailable");
  box.hidden = false;
  for (const id of ["controls", "video", "shortcuts"]) $(id).hidden = true;
}

async function startPlayback(id, video, state) {
  let playback;
  try {
    playback = await api(`/v1/playback/${encodeURIComponent(id)}`, { method: "POST" });
  } catch (error) {
    unavailable(error);
    return false;
  }
  if (playback.poster_url && !video.poster) video.poster = playback.poster_url;
  state.viewUrl = playback.view_url || null;
  if (playback.storyboard_url) loadStoryboard(playback.storyboard_url).then((cues) => { state.cues = cues; }).catch(() => {});
  state.live = playback.live || null;
  if (state.live) setupLive(video, state);
  // A live stream plays from its DVR master: the same live edge, and fans may seek back.
  attach(id, state.live ? state.live.dvr_url : playback.master_url, video, state);
  return true;
}

/** Live mode: the LIVE badge, "go live" back to the edge, the seek bar over the DVR window. */
function setupLive(video, state) {
  const bar = $("live-bar");
  bar.hidden = false;
  $("live-badge").textContent = state.live.on_air ? t("statusLive") : t("statusFinished");
  const goLive = $("go-live");
  goLive.textContent = t("goLive");
  goLive.hidden = !state.live.on_air;
  goLive.addEventListener("click", () => {
    const edge = state.hls && state.hls.liveSyncPosition;
    if (edge) video.currentTime = edge;
    video.play().catch(() => {});
  });
  const paint = () => {
    const edge = state.hls && state.hls.liveSyncPosition;
    const behind = edge ? Math.max(0, edge - video.currentTime) : 0;
    goLive.setAttribute("aria-pressed", String(behind < 3));
    $("live-behind").textContent = behind >= 3 ? t("behindLive", { time: formatDuration(behind) }) : "";
  };
  video.addEventListener("timeupdate", paint);
}

function attach(id, url, video, state) {
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    // Live: start three segments behind the edge, the usual balance of delay and stalls.
    const hls = new Hls(state.live ? { capLevelToPlayerSize: false, liveSyncDurationCount: 3 } : { capLevelToPlayerSize: false });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => fillQuality(hls));
    hls.on(Hls.Events.LEVEL_SWITCHED, () => markQuality(hls));
    hls.on(Hls.Events.ERROR, (_event, data) => onHlsError(id, hls, data));
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url; // Safari plays HLS natively (its own quality choice)
    $("quality").hidden = true;
  }
  video.play().catch(() => { /* autoplay may need a click: the play button is there */ });
}

function levelLabel(level) {
  const kbps = level.bitrate ? ` · ${Math.round(level.bitrate / 1000)} kbit/s` : "";
  return `${level.height ? `${level.height}p` : level.name || "?"}${kbps}`;
}

function fillQuality(hls) {
  const select = $("quality");
  const options = [h("option", { value: "-1", text: t("auto") })];
  hls.levels.forEach((level, index) => options.push(h("option", { value: String(index), text: levelLabel(level) })));
  select.replaceChildren(...options);
  select.value = "-1";
}

function markQuality(hls) {
  const auto = $("quality").options[0];
  if (auto && hls.autoLevelEnabled && hls.levels[hls.currentLevel]) {
    auto.textContent = `${t("auto")} (${levelLabel(hls.levels[hls.currentLevel])})`;
  }
}

// Rights are re-checked on every request: when the server stops a running playback (a revoke,
// an ended window, another country), ask again to show the fan the reason in words.
async function onHlsError(id, hls, data) {
  if (!data.fatal) return;
  const status = data.response && data.response.code;
  if (status === 403 || status === 451) {
    hls.destroy();
    try {
      await api(`/v1/playback/${encodeURIComponent(id)}`, { method: "POST" });
      $("player-status").textContent = t("interrupted");
    } catch (error) {
      unavailable(error);
    }
  } else {
    $("player-status").textContent = t("playbackError", { message: data.details });
  }
}

function setupControls(video, state) {
  const play = $("play");
  const mute = $("mute");
  const seek = $("seek");
  const togglePlay = () => (video.paused ? video.play().catch(() => {}) : video.pause());
  const toggleMute = () => { video.muted = !video.muted; };
  const full = () => (document.fullscreenElement ? document.exitFullscreen() : $("watch").querySelector(".stage").requestFullscreen()).catch(() => {});
  const step = (delta) => { video.currentTime = Math.max(0, Math.min(video.duration || 0, video.currentTime + delta)); };
  play.addEventListener("click", togglePlay);
  mute.addEventListener("click", toggleMute);
  $("fullscreen").addEventListener("click", full);
  video.addEventListener("click", togglePlay);
  $("quality").addEventListener("change", (event) => {
    if (state.hls) state.hls.currentLevel = Number(event.target.value);
  });
  const paintButtons = () => {
    play.replaceChildren(icon(video.paused ? "play" : "pause"));
    play.setAttribute("aria-label", video.paused ? t("play") : t("pause"));
    mute.replaceChildren(icon(video.muted ? "muted" : "volume"));
    mute.setAttribute("aria-label", video.muted ? t("unmute") : t("mute"));
  };
  $("fullscreen").replaceChildren(icon("fullscreen"));
  for (const name of ["play", "pause", "volumechange"]) video.addEventListener(name, paintButtons);
  $("fullscreen").setAttribute("aria-label", t("fullscreen"));
  paintButtons();
  video.addEventListener("loadedmetadata", () => { seek.max = String(video.duration || 0); tick(video); });
  video.addEventListener("timeupdate", () => { tick(video); countView(video, state); });
  seek.addEventListener("input", () => { video.currentTime = Number(seek.value); showPreview(state, Number(seek.value)); });
  seek.addEventListener("change", () => hidePreview());
  setupPreview(seek, video, state);
  document.addEventListener("keydown", (event) => onKey(event, { togglePlay, toggleMute, full, step }));
}

function tick(video) {
  const seek = $("seek");
  if (!seek.matches(":active")) seek.value = String(video.currentTime);
  seek.setAttribute("aria-valuetext", `${formatDuration(video.currentTime)} / ${formatDuration(video.duration || 0)}`);
  $("clock").textContent = `${formatDuration(video.currentTime)} / ${formatDuration(video.duration || 0)}`;
}

function setupPreview(seek, video, state) {
  seek.addEventListener("pointermove", (event) => {
    const box = seek.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    showPreview(state, fraction * (video.duration || 0), fraction);
  });
  seek.addEventListener("pointerleave", hidePreview);
  seek.addEventListener("blur", hidePreview);
}

function showPreview(state, time, fraction) {
  const cue = cueAt(state.cues, time);
  const preview = $("preview");
  if (!cue) return;
  const seek = $("seek");
  const at = fraction ?? Number(seek.value) / (Number(seek.max) || 1);
  paintCue(preview.querySelector(".preview-img"), cue);
  preview.querySelector(".preview-time").textContent = formatDuration(time);
  // Centred on the pointer, kept inside the seek bar.
  const left = Math.min(Math.max(at * seek.clientWidth - cue.w / 2, 0), Math.max(0, seek.clientWidth - cue.w));
  preview.style.left = `${left}px`;
  preview.hidden = false;
}

function hidePreview() {
  $("preview").hidden = true;
}

function countView(video, state) {
  const delta = video.currentTime - state.lastTime;
  state.lastTime = video.currentTime;
  // Only real playing time counts: seeks jump by more than a timeupdate interval.
  if (!video.paused && delta > 0 && delta < 1.5) state.played += delta;
  if (state.played >= VIEW_AFTER_S && state.viewUrl && !state.counted) {
    state.counted = true;
    fetch(state.viewUrl, { method: "POST" }).catch(() => {});
  }
}

function onKey(event, actions) {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // Keys typed into fields, and space on buttons/links, keep their usual meaning.
  if (target.closest && target.closest("input:not([type=range]), select, textarea")) return;
  const onControl = target.closest && target.closest("button, a, summary");
  const key = event.key.toLowerCase();
  if ((key === " " && !onControl) || key === "k") actions.togglePlay();
  else if (key === "arrowleft") actions.step(-SEEK_STEP_S);
  else if (key === "arrowright") actions.step(SEEK_STEP_S);
  else if (key === "f") actions.full();
  else if (key === "m") actions.toggleMute();
  else return;
  event.preventDefault();
}

function setupShare() {
  const input = $("share-url");
  input.value = location.href;
  $("share").addEventListener("click", async () => {
    const status = $("share-status");
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = t("copied");
    } catch {
      input.focus();
      input.select();
      status.textContent = t("copyFailed");
    }
  });
}
