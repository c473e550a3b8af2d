// The partner's studio: go live from this browser over WHIP (RFC 9725) to /v1/live/{id}/whip.
// The stream key lives in this module's memory only (the password field aside): it goes in
// the Authorization header of the WHIP POST and DELETE, never into a URL or storage.
// The page shows what the browser itself knows (its WebRTC connection and what it sends);
// the stream's pipeline health needs a partner API key, which this page never asks for.
import { withLang } from "./api.js";
import { LANGUAGES, currentLang, setLang, t, formatNumber } from "./i18n.js";
import { h } from "./dom.js";

const ICE_GATHERING_TIMEOUT_MS = 5000; // non-trickle: the offer waits for every candidate
const STATS_EVERY_MS = 2000;
const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

const els = {
  form: document.getElementById("studio-form"),
  key: document.getElementById("stream-key"),
  camera: document.getElementById("camera"),
  microphone: document.getElementById("microphone"),
  preview: document.getElementById("preview"),
  startPreview: document.getElementById("start-preview"),
  goLive: document.getElementById("go-live"),
  stop: document.getElementById("stop"),
  state: document.getElementById("studio-state"),
  stats: document.getElementById("studio-stats"),
  error: document.getElementById("studio-error"),
  onAir: document.getElementById("on-air"),
};

const studio = {
  streamId: decodeURIComponent(location.pathname.split("/")[2] || ""),
  media: null, // the MediaStream being previewed (and sent when live)
  pc: null,
  session: null, // the WHIP session URL (the POST's Location)
  key: "", // the key the session was opened with: DELETE needs the same one
  statsTimer: 0,
  lastSent: null,
};

/** An error worth showing as it is: the API's refusal or a browser failure, in words. */
class StudioError extends Error {}

function setState(name, vars = {}) {
  els.state.dataset.state = name;
  els.state.textContent = t(`studioState_${name}`, vars);
  const live = name === "live";
  els.onAir.hidden = !live;
  const busy = ["connecting", "live", "interrupted", "stopping"].includes(name);
  els.goLive.disabled = busy;
  els.stop.disabled = !busy || name === "stopping";
  els.key.readOnly = busy;
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

function mediaConstraints() {
  const video = els.camera.value ? { ...VIDEO, deviceId: { exact: els.camera.value } } : VIDEO;
  const audio = els.microphone.value ? { deviceId: { exact: els.microphone.value } } : true;
  return { video, audio };
}

function fillDevices(select, devices, kind, chosen) {
  const ofKind = devices.filter((d) => d.kind === kind);
  select.replaceChildren(...ofKind.map((d, i) =>
    h("option", { value: d.deviceId, text: d.label || t(kind === "videoinput" ? "studioCameraN" : "studioMicrophoneN", { n: i + 1 }) })));
  if (chosen && ofKind.some((d) => d.deviceId === chosen)) select.value = chosen;
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const settingOf = (tracks) => (tracks[0] ? tracks[0].getSettings().deviceId : "");
  fillDevices(els.camera, devices, "videoinput", studio.media && settingOf(studio.media.getVideoTracks()));
  fillDevices(els.microphone, devices, "audioinput", studio.media && settingOf(studio.media.getAudioTracks()));
}

/** Open the chosen camera and microphone, show them, and (when live) send them instead. */
async function openMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new StudioError(t("studioNoMedia"));
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia(mediaConstraints());
  } catch (error) {
    throw new StudioError(t("studioMediaFailed", { message: error.message || error.name }));
  }
  const previous = studio.media;
  studio.media = media;
  els.preview.srcObject = media;
  if (studio.pc) await replaceSentTracks(studio.pc, media);
  if (previous) previous.getTracks().forEach((track) => track.stop());
  await listDevices();
  if (!studio.pc) setState("preview");
}

async function replaceSentTracks(pc, media) {
  for (const transceiver of pc.getTransceivers()) {
    const kind = transceiver.sender.track ? transceiver.sender.track.kind : transceiver.receiver.track.kind;
    const track = kind === "video" ? media.getVideoTracks()[0] : media.getAudioTracks()[0];
    if (track) await transceiver.sender.replaceTrack(track);
  }
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    // Whatever was gathered by then goes in the offer (a host candidate comes at once).
    const timer = setTimeout(() => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    }, ICE_GATHERING_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

/** The API's refusal in words: what it means for the partner, then the API's own sentence. */
async function refusal(response) {
  let message = "";
  try {
    const body = await response.json();
    message = (body && body.error && body.error.message) || "";
  } catch {
    message = ""; // not the API's JSON (a proxy's page, say)
  }
  const meaning = { 401: "studioErrorKey", 403: "studioErrorOtherStream", 409: "studioErrorBusy", 413: "studioErrorOffer", 415: "studioErrorOffer", 503: "studioErrorFull" }[response.status];
  const summary = meaning ? t(meaning) : t("studioErrorStatus", { status: response.status });
  return new StudioError(message ? t("studioErrorDetail", { summary, message }) : summary);
}

async function publish(pc, key) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await iceGatheringComplete(pc);
  const response = await fetch(withLang(`/v1/live/${encodeURIComponent(studio.streamId)}/whip`), {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${key}` },
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) throw await refusal(response);
  const header = response.headers.get("Location");
  const sessionUrl = header ? new URL(header, location.origin).href : null;
  if (studio.pc !== pc) {
    // Stopped while the server was answering: end the session it just opened.
    if (sessionUrl) fetch(sessionUrl, { method: "DELETE", headers: { Authorization: `Bearer ${key}` } }).catch(() => {});
    return;
  }
  studio.session = sessionUrl;
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
}

function onConnectionState() {
  const pc = studio.pc;
  if (!pc) return;
  const connection = pc.connectionState;
  if (connection === "connected") {
    setState("live");
    startStats();
  } else if (connection === "disconnected") {
    setState("interrupted"); // ICE may still recover by itself; "failed" follows if not
  } else if (connection === "failed" || connection === "closed") {
    const wasLive = els.state.dataset.state === "live" || els.state.dataset.state === "interrupted";
    finish("error");
    showError(t(wasLive ? "studioErrorLost" : "studioErrorIce"));
  }
}

async function goLive(event) {
  event.preventDefault();
  showError("");
  const key = els.key.value.trim();
  if (!key) {
    showError(t("studioNeedKey"));
    els.key.focus();
    return;
  }
  setState("connecting");
  try {
    if (!studio.media) await openMedia();
    setState("connecting");
    const pc = new RTCPeerConnection({ iceServers: [] });
    studio.pc = pc;
    studio.key = key;
    for (const track of studio.media.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [studio.media] });
    }
    pc.addEventListener("connectionstatechange", onConnectionState);
    await publish(pc, key);
  } catch (error) {
    if (!studio.pc && els.state.dataset.state !== "connecting") return; // stopped meanwhile
    finish("error");
    showError(error instanceof StudioError ? error.message : t("studioErrorFailed", { message: error.message || String(error) }));
  }
}

/** Close the peer and the session (DELETE with the same key); the preview stays open. */
function finish(stateName) {
  const { pc, session, key } = studio;
  studio.pc = null;
  studio.session = null;
  studio.key = "";
  stopStats();
  if (pc) pc.close();
  if (session) {
    // keepalive: the DELETE still goes out when this runs as the page is being closed
    fetch(session, { method: "DELETE", headers: { Authorization: `Bearer ${key}` }, keepalive: true })
      .catch(() => {}); // the server ends an idle session by itself
  }
  setState(stateName);
}

async function stop() {
  const { session, key, pc } = studio;
  if (!pc) return;
  setState("stopping");
  studio.session = null; // finish() must not send a second DELETE
  let failure = "";
  if (session) {
    try {
      const response = await fetch(session, { method: "DELETE", headers: { Authorization: `Bearer ${key}` } });
      if (!response.ok && response.status !== 404) failure = (await refusal(response)).message;
    } catch (error) {
      failure = t("studioErrorFailed", { message: error.message || String(error) });
    }
  }
  finish("stopped");
  if (failure) showError(failure);
}

function startStats() {
  stopStats();
  studio.lastSent = null;
  studio.statsTimer = setInterval(showStats, STATS_EVERY_MS);
}

function stopStats() {
  clearInterval(studio.statsTimer);
  studio.statsTimer = 0;
  els.stats.textContent = "";
  delete els.stats.dataset.path;
}

async function showStats() {
  if (!studio.pc) return;
  const report = await studio.pc.getStats();
  let video = null;
  let bytes = 0;
  let pairId = "";
  report.forEach((entry) => {
    if (entry.type === "transport" && entry.selectedCandidatePairId) pairId = entry.selectedCandidatePairId;
    if (entry.type !== "outbound-rtp") return;
    bytes += entry.bytesSent || 0;
    if (entry.kind === "video") video = entry;
  });
  // The network path in use, for support questions ("which address did it take?").
  const pair = report.get(pairId);
  if (pair) {
    const end = (id) => (report.get(id) ? `${report.get(id).address}:${report.get(id).port}` : "?");
    els.stats.dataset.path = `${end(pair.localCandidateId)} → ${end(pair.remoteCandidateId)}`;
  }
  const now = performance.now();
  const last = studio.lastSent;
  studio.lastSent = { bytes, at: now };
  if (!last || !video) return;
  const kbits = Math.round(((bytes - last.bytes) * 8) / (now - last.at));
  els.stats.textContent = t("studioSending", {
    size: video.frameWidth && video.frameHeight ? `${video.frameWidth}×${video.frameHeight}` : "?",
    fps: Math.round(video.framesPerSecond || 0),
    kbits: formatNumber(Math.max(0, kbits)),
  });
}

function translatePage() {
  document.documentElement.lang = currentLang();
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = `Courtside — ${t("studioTitle")}`;
  setState(els.state.dataset.state || "idle");
}

function setupLanguages() {
  const select = document.getElementById("lang-select");
  select.replaceChildren(...LANGUAGES.map((l) => h("option", { value: l.tag, lang: l.tag, text: l.label })));
  select.value = currentLang();
  // No reload: that would drop the key and the connection.
  select.addEventListener("change", () => {
    setLang(select.value);
    translatePage();
  });
}

function reopenMedia() {
  showError("");
  openMedia().catch((error) => showError(error.message));
}

function start() {
  document.getElementById("stream-id").textContent = studio.streamId;
  setupLanguages();
  translatePage();
  els.form.addEventListener("submit", goLive);
  els.stop.addEventListener("click", stop);
  els.startPreview.addEventListener("click", reopenMedia);
  els.camera.addEventListener("change", reopenMedia);
  els.microphone.addEventListener("change", reopenMedia);
  window.addEventListener("pagehide", () => {
    if (studio.pc) finish("stopped");
  });
  listDevices().catch(() => {}); // labels come once the camera is allowed
}

start();
