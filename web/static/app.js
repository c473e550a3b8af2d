// Fan pages: one shell, rendered here by path. Home, league, team, search and watch.
// Text from the API is always set with textContent (see dom.js), never as HTML.
import { api, leagueOf } from "./api.js";
import { LANGUAGES, currentLang, setLang, t } from "./i18n.js";
import { h, cardList, matchList, section } from "./dom.js";
import { showWatch } from "./player.js";

const page = document.getElementById("page");
const pageStatus = document.getElementById("page-status");
const PER_LEAGUE = 8;

const ROUTES = [
  [/^\/$/, () => showHome()],
  [/^\/league\/([^/]+)\/?$/, (slug) => showLeague(slug)],
  [/^\/team\/([^/]+)\/([^/]+)\/?$/, (league, team) => showTeam(league, team)],
  [/^\/search\/?$/, () => showSearch(new URLSearchParams(location.search).get("q") || "")],
  [/^\/watch\/([^/]+)\/?$/, (id) => showWatch(id, page)],
  [/^\/live\/([^/]+)\/?$/, (id) => showWatch(id, page)],
];

function translateShell() {
  document.documentElement.lang = currentLang();
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.getElementById("search-q").placeholder = t("searchPlaceholder");
}

function setupLanguages() {
  const select = document.getElementById("lang-select");
  select.replaceChildren(...LANGUAGES.map((l) => h("option", { value: l.tag, lang: l.tag, text: l.label })));
  select.value = currentLang();
  // Titles come translated from the API, so a new language means asking again: reload.
  select.addEventListener("change", () => {
    setLang(select.value);
    location.reload();
  });
}

async function showHome() {
  document.title = "Courtside — highlights";
  const [schedule, leagues, streams] = await Promise.all([
    api("/v1/schedule").catch(() => ({ live: [], upcoming: [] })),
    api("/v1/leagues").catch(() => null),
    api("/v1/highlights?live=true&limit=12").catch(() => ({ items: [] })),
  ]);
  const live = schedule.live || [];
  const onAir = streams.items || [];
  page.append(h("h1", { class: "visually-hidden", text: t("home") }));
  // Streams fans can watch now, then the matches being played (with or without a stream here).
  const liveBody = [onAir.length ? cardList(onAir, t("liveNow")) : null, live.length ? matchList(live, t("liveNow")) : null].filter(Boolean);
  page.append(section("live-heading", t("liveNow"), liveBody.length ? h("div", {}, ...liveBody) : t("noLive")));
  const groups = leagues ? await latestPerLeague(leagues.items || []) : await latestGrouped();
  if (!groups.length) page.append(section("latest-heading", t("latest"), t("noHighlights")));
  groups.forEach(({ league, items }, index) => {
    const heading = h("h2", { id: `latest-${index}` }, h("a", { href: `/league/${encodeURIComponent(league.slug)}`, text: t("latestIn", { league: league.name }) }));
    page.append(h("section", { class: "block", "aria-labelledby": `latest-${index}` }, heading, cardList(items, league.name)));
  });
  const upcoming = schedule.upcoming || [];
  page.append(section("upcoming-heading", t("upcoming"), upcoming.length ? matchList(upcoming, t("upcoming")) : t("noUpcoming")));
}

async function latestPerLeague(leagues) {
  const pages = await Promise.all(leagues.slice(0, 20).map((league) =>
    api(`/v1/highlights?league=${encodeURIComponent(league.slug)}&live=false&limit=${PER_LEAGUE}`).catch(() => ({ items: [] }))));
  return leagues.map((league, i) => ({ league, items: (pages[i] && pages[i].items) || [] })).filter((g) => g.items.length);
}

// Before the leagues endpoint existed: one page of the newest, grouped by league.
async function latestGrouped() {
  const { items } = await api("/v1/highlights?limit=48");
  const groups = new Map();
  for (const item of items) {
    const league = leagueOf(item);
    if (!groups.has(league.slug)) groups.set(league.slug, { league, items: [] });
    groups.get(league.slug).items.push(item);
  }
  return [...groups.values()];
}

async function showLeague(slug) {
  const league = await api(`/v1/leagues/${encodeURIComponent(slug)}`);
  document.title = `${league.name} — Courtside`;
  page.append(h("h1", { text: league.name }));
  const teams = league.teams || [];
  if (teams.length) {
    const links = teams.map((team) => h("li", {}, h("a", { href: `/team/${encodeURIComponent(slug)}/${encodeURIComponent(team.slug)}`, text: team.name })));
    page.append(section("teams-heading", t("teams"), h("ul", { class: "chips" }, links)));
  }
  const latest = league.latest || [];
  page.append(section("latest-heading", t("latest"), latest.length ? cardList(latest, t("latest")) : t("noHighlights")));
  const matches = await api(`/v1/matches?league=${encodeURIComponent(slug)}&status=upcoming&limit=10`).catch(() => ({ items: [] }));
  page.append(section("upcoming-heading", t("upcoming"), matches.items.length ? matchList(matches.items, t("upcoming")) : t("noUpcoming")));
}

async function showTeam(leagueSlug, teamSlug) {
  const team = await api(`/v1/leagues/${encodeURIComponent(leagueSlug)}/teams/${encodeURIComponent(teamSlug)}`);
  document.title = `${team.name} — Courtside`;
  const leagueLink = team.league ? h("p", {}, h("a", { href: `/league/${encodeURIComponent(leagueSlug)}`, text: leagueOf(team).name })) : null;
  page.append(h("h1", { text: team.name }), leagueLink || "");
  const latest = team.latest || [];
  page.append(section("latest-heading", t("latest"), latest.length ? cardList(latest, t("latest")) : t("noHighlights")));
  const matches = team.matches || [];
  page.append(section("matches-heading", t("matches"), matches.length ? matchList(matches, t("matches")) : t("noMatches")));
}

async function showSearch(q) {
  const query = q.trim().slice(0, 100);
  document.getElementById("search-q").value = query;
  document.title = `${t("search")} — Courtside`;
  if (!query) {
    page.append(h("h1", { text: t("search") }), h("p", { class: "empty", text: t("searchPrompt") }));
    return;
  }
  page.append(h("h1", { text: t("resultsFor", { q: query }) }));
  const list = cardList([], t("resultsFor", { q: query }));
  page.append(list);
  await searchPage(query, null, list);
}

async function searchPage(query, cursor, list) {
  const params = new URLSearchParams({ q: query, limit: "24" });
  if (cursor) params.set("cursor", cursor);
  const result = await api(`/v1/highlights?${params}`);
  list.append(...cardList(result.items, "").children);
  if (!list.children.length) list.replaceWith(h("p", { class: "empty", text: t("noResults", { q: query }) }));
  if (result.next_cursor) {
    const more = h("button", { type: "button", class: "more", text: t("more") });
    more.addEventListener("click", async () => {
      more.remove();
      await searchPage(query, result.next_cursor, list);
    });
    page.append(more);
  }
}

async function route() {
  translateShell();
  setupLanguages();
  for (const [pattern, render] of ROUTES) {
    const match = location.pathname.match(pattern);
    if (!match) continue;
    pageStatus.textContent = t("loading");
    try {
      await render(...match.slice(1).map(decodeURIComponent));
      pageStatus.textContent = "";
    } catch (error) {
      pageStatus.textContent = t("loadFailed", { message: error.message });
    }
    return;
  }
  pageStatus.textContent = t("notFound");
}

route();
