// Small DOM helpers. API data only ever goes in through textContent and attributes.
import { t, formatTime, formatNumber } from "./i18n.js";
import { leagueOf } from "./api.js";

/** An element with attributes/properties and children (strings become text nodes). */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && !key.startsWith("aria") && key !== "role") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function formatDuration(seconds) {
  if (!seconds && seconds !== 0) return "";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function watchHref(id) {
  return `/watch/${encodeURIComponent(id)}`;
}

/** A highlight as a card linking to its player page. */
export function card(item) {
  const league = leagueOf(item);
  const poster = item.poster_url
    ? h("img", { src: item.poster_url, alt: t("posterAlt", { title: item.title }), loading: "lazy", width: 320, height: 180 })
    : h("span", { class: "poster-missing", "aria-hidden": "true" });
  const meta = [league.name, formatDuration(item.duration_s)];
  if (typeof item.views === "number" && item.views > 0) meta.push(t("views", { n: formatNumber(item.views) }));
  return h("li", {},
    h("a", { class: "card", href: item.is_live ? `/live/${encodeURIComponent(item.id)}` : watchHref(item.id), "data-asset-id": item.id },
      h("span", { class: "thumb" }, poster,
        item.is_live ? h("span", { class: "badge badge-live on-thumb", text: t("statusLive") }) : null,
        !item.is_live && item.duration_s ? h("span", { class: "duration", text: formatDuration(item.duration_s) }) : null),
      h("span", { class: "title", lang: item.lang, text: item.title }),
      h("span", { class: "meta", text: meta.filter(Boolean).join(" · ") }),
      item.published_at ? h("time", { class: "meta", dateTime: item.published_at, text: formatTime(item.published_at) }) : null));
}

export function cardList(items, label) {
  return h("ul", { class: "grid", "aria-label": label }, items.map(card));
}

function sideName(side) {
  if (!side) return "?";
  return typeof side === "object" ? side.name || side.slug || "?" : String(side);
}

// A side of a match: a link to its team page when the team is known to the league.
function side(match, which) {
  const team = match[which];
  const league = match.league && match.league.slug;
  if (!team || !team.slug || !league) return h("span", { text: sideName(team) });
  return h("a", { href: `/team/${encodeURIComponent(league)}/${encodeURIComponent(team.slug)}`, text: sideName(team) });
}

// "{home} vs {away}" in the viewer's language, with the two sides as elements.
function versus(match) {
  const parts = t("vs", { home: "\u0000", away: "\u0001" }).split(/([\u0000\u0001])/);
  return parts.map((part) => (part === "\u0000" ? side(match, "home") : part === "\u0001" ? side(match, "away") : part));
}

function statusLabel(status) {
  return { live: t("statusLive"), upcoming: t("statusUpcoming"), finished: t("statusFinished") }[status] || "";
}

/** A match as a list row: teams, league, kickoff and its state. */
export function matchRow(match) {
  const league = match.league ? leagueOf(match) : null;
  return h("li", { class: `match match-${match.status || "unknown"}` },
    h("span", { class: "teams" }, versus(match)),
    h("span", { class: "meta", text: [league && league.name, match.competition && match.competition.name].filter(Boolean).join(" · ") }),
    match.kickoff ? h("time", { class: "meta", dateTime: match.kickoff, text: formatTime(match.kickoff) }) : null,
    match.status ? h("span", { class: `badge badge-${match.status}`, text: statusLabel(match.status) }) : null);
}

export function matchList(matches, label) {
  return h("ul", { class: "matches", "aria-label": label }, matches.map(matchRow));
}

/** A titled section; ``body`` is the content or a sentence when there is none. */
export function section(id, title, body) {
  return h("section", { "aria-labelledby": id, class: "block" },
    h("h2", { id, text: title }),
    typeof body === "string" ? h("p", { class: "empty", text: body }) : body);
}

// Player icons as inline SVG: no icon font or emoji font is needed on the viewer's machine.
const ICONS = {
  play: "M8 5v14l11-7z",
  pause: "M6 5h4v14H6zM14 5h4v14h-4z",
  volume: "M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4z",
  muted: "M3 9v6h4l5 5V4L7 9H3zm13.6 3 2.7-2.7-1.4-1.4-2.7 2.7-2.7-2.7-1.4 1.4 2.7 2.7-2.7 2.7 1.4 1.4 2.7-2.7 2.7 2.7 1.4-1.4z",
  fullscreen: "M4 4h6v2H6v4H4zm10 0h6v6h-2V6h-4zM4 14h2v4h4v2H4zm14 0h2v6h-6v-2h4z",
};

export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}
