// The JSON API, always asked in the viewer's language.
import { currentLang } from "./i18n.js";

/** An error from the API: its reason code, its sentence and its details, as the API sent them. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code || "";
    this.details = error.details || {};
  }
}

export function withLang(path) {
  const url = new URL(path, location.origin);
  url.searchParams.set("lang", currentLang());
  return url.pathname + url.search;
}

export async function api(path, options = {}) {
  const response = await fetch(withLang(path), options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // an empty or non-JSON answer (a proxy's error page, say)
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** The league as a {slug, name} pair, from either shape the catalog has used. */
export function leagueOf(item) {
  if (item.league && typeof item.league === "object") return item.league;
  return { slug: item.league || "", name: item.league_name || item.league || "" };
}
