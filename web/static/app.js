// Fan home: list highlights from the JSON API and play one with hls.js.
// Text from the API is always set with textContent, never as HTML.

const video = document.getElementById("video");
const nowPlaying = document.getElementById("now-playing");
const playerStatus = document.getElementById("player-status");
let hls = null;

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message || `request failed (${response.status})`);
  return body;
}

function formatDuration(seconds) {
  if (!seconds) return "";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function card(item) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.className = "card";
  button.dataset.assetId = item.id;
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = item.title;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = [item.league_name, formatDuration(item.duration_s)].filter(Boolean).join(" · ");
  button.append(title, meta);
  button.addEventListener("click", () => play(item));
  li.append(button);
  return li;
}

async function play(item) {
  nowPlaying.textContent = item.title;
  playerStatus.textContent = "Loading…";
  try {
    const playback = await api(`/v1/playback/${encodeURIComponent(item.id)}`, { method: "POST" });
    attach(item, playback.master_url);
    playerStatus.textContent = "";
  } catch (error) {
    playerStatus.textContent = error.message;
  }
}

// Rights are re-checked on every request: when the server stops a running playback (a revoke,
// an ended window, another country), ask again to show the fan the reason in words.
async function explainStop(item) {
  try {
    await api(`/v1/playback/${encodeURIComponent(item.id)}`, { method: "POST" });
    playerStatus.textContent = "Playback was interrupted; pick the highlight again to resume.";
  } catch (error) {
    playerStatus.textContent = error.message;
  }
}

function attach(item, url) {
  if (hls) hls.destroy();
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls();
    hls.loadSource(url);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      const status = data.response && data.response.code;
      if (status === 403 || status === 451) {
        hls.destroy();
        explainStop(item);
      } else {
        playerStatus.textContent = "Playback error: " + data.details;
      }
    });
  } else {
    video.src = url; // Safari plays HLS natively
  }
  video.play().catch(() => { /* autoplay may need a click; the controls are there */ });
}

async function load() {
  const status = document.getElementById("catalog-status");
  try {
    const page = await api("/v1/highlights?limit=48");
    const list = document.getElementById("highlights");
    list.replaceChildren(...page.items.map(card));
    status.textContent = page.items.length ? "" : "No highlights yet: they appear here as soon as they are processed.";
  } catch (error) {
    status.textContent = "Could not load highlights: " + error.message;
  }
}

load();
