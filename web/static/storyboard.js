// Storyboard previews: WebVTT cues whose text is "<sprite sheet>#xywh=x,y,w,h".

const MAX_VTT_BYTES = 512 * 1024;

function seconds(stamp) {
  const parts = stamp.trim().split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

/** The cues of a storyboard VTT, each {start, end, url, x, y, w, h}, URLs resolved against ``base``. */
export function parseStoryboard(text, base) {
  const cues = [];
  for (const block of text.replace(/\r/g, "").split(/\n\n+/)) {
    const lines = block.split("\n").filter(Boolean);
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->");
    const [file, fragment] = lines[timing + 1].trim().split("#xywh=");
    if (!fragment) continue;
    const [x, y, w, h] = fragment.split(",").map(Number);
    if ([x, y, w, h].some(Number.isNaN)) continue;
    cues.push({ start: seconds(from), end: seconds(to.trim().split(/\s+/)[0]), url: new URL(file, base).href, x, y, w, h });
  }
  return cues;
}

export async function loadStoryboard(url) {
  const response = await fetch(url);
  if (!response.ok) return [];
  const text = await response.text();
  return text.length > MAX_VTT_BYTES ? [] : parseStoryboard(text, response.url || url);
}

export function cueAt(cues, time) {
  return cues.find((cue) => time >= cue.start && time < cue.end) || cues[cues.length - 1] || null;
}

/** Show ``cue``'s crop of its sprite sheet in ``box``. */
export function paintCue(box, cue) {
  box.style.width = `${cue.w}px`;
  box.style.height = `${cue.h}px`;
  box.style.backgroundImage = `url("${cue.url.replace(/["\\\n]/g, encodeURIComponent)}")`;
  box.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
}
