// UI strings in the languages the demo serves, and the viewer's choice of language.
// Item titles come translated from the API (?lang=); these are only the app's own words.

export const LANGUAGES = [
  { tag: "zh-Hans", label: "中文（简体）" },
  { tag: "en", label: "English" },
  { tag: "sv", label: "Svenska" },
];

const STRINGS = {
  en: {
    tagline: "Every play, seconds after it happens",
    skip: "Skip to content",
    language: "Language",
    search: "Search",
    searchPlaceholder: "Teams, players, moments…",
    searchLabel: "Search highlights",
    liveNow: "Live now",
    noLive: "Nothing is live right now.",
    goLive: "Go live",
    behindLive: "{time} behind live",
    latest: "Latest highlights",
    latestIn: "Latest from {league}",
    upcoming: "Upcoming matches",
    noUpcoming: "No matches in the next days.",
    noHighlights: "No highlights yet: they appear here as soon as they are processed.",
    loading: "Loading…",
    loadFailed: "Could not load this page: {message}",
    teams: "Teams",
    matches: "Matches",
    noMatches: "No matches scheduled.",
    resultsFor: "Results for “{q}”",
    noResults: "Nothing matches “{q}”.",
    searchPrompt: "Type a team, a player or a moment to search.",
    more: "Show more",
    vs: "{home} vs {away}",
    statusLive: "Live",
    statusUpcoming: "Upcoming",
    statusFinished: "Finished",
    views: "{n} views",
    play: "Play",
    pause: "Pause",
    mute: "Mute",
    unmute: "Unmute",
    seek: "Seek",
    quality: "Quality",
    auto: "Auto",
    fullscreen: "Full screen",
    share: "Copy link",
    shareLabel: "Link to this highlight",
    copied: "Link copied.",
    copyFailed: "Copy the link from the box.",
    related: "Related clips",
    shortcuts: "Keyboard shortcuts",
    keyPlay: "Play or pause",
    keySeek: "Back or forward 5 seconds",
    keyFull: "Full screen",
    keyMute: "Mute or unmute",
    notFound: "This highlight does not exist or was removed.",
    notAvailable: "This highlight is not available here.",
    availableFrom: "It will be available from {time}.",
    interrupted: "Playback was interrupted; reload the page to resume.",
    playbackError: "Playback error: {message}",
    posterAlt: "Poster of {title}",
    videoLabel: "Highlight video: {title}",
    league: "League",
    home: "Home",
  },
  sv: {
    tagline: "Varje spelmoment, sekunder efter att det hänt",
    skip: "Hoppa till innehållet",
    language: "Språk",
    search: "Sök",
    searchPlaceholder: "Lag, spelare, ögonblick…",
    searchLabel: "Sök höjdpunkter",
    liveNow: "Direkt nu",
    noLive: "Inget sänds direkt just nu.",
    goLive: "Till direkt",
    behindLive: "{time} efter direkt",
    latest: "Senaste höjdpunkterna",
    latestIn: "Senaste från {league}",
    upcoming: "Kommande matcher",
    noUpcoming: "Inga matcher de närmaste dagarna.",
    noHighlights: "Inga höjdpunkter än: de dyker upp här så snart de är klara.",
    loading: "Laddar…",
    loadFailed: "Sidan kunde inte laddas: {message}",
    teams: "Lag",
    matches: "Matcher",
    noMatches: "Inga matcher inplanerade.",
    resultsFor: "Resultat för ”{q}”",
    noResults: "Inget matchar ”{q}”.",
    searchPrompt: "Skriv ett lag, en spelare eller ett ögonblick för att söka.",
    more: "Visa fler",
    vs: "{home} mot {away}",
    statusLive: "Direkt",
    statusUpcoming: "Kommande",
    statusFinished: "Slut",
    views: "{n} visningar",
    play: "Spela",
    pause: "Pausa",
    mute: "Ljud av",
    unmute: "Ljud på",
    seek: "Spola",
    quality: "Kvalitet",
    auto: "Auto",
    fullscreen: "Helskärm",
    share: "Kopiera länk",
    shareLabel: "Länk till den här höjdpunkten",
    copied: "Länken är kopierad.",
    copyFailed: "Kopiera länken från rutan.",
    related: "Relaterade klipp",
    shortcuts: "Kortkommandon",
    keyPlay: "Spela eller pausa",
    keySeek: "Bakåt eller framåt 5 sekunder",
    keyFull: "Helskärm",
    keyMute: "Ljud av eller på",
    notFound: "Den här höjdpunkten finns inte eller har tagits bort.",
    notAvailable: "Den här höjdpunkten är inte tillgänglig här.",
    availableFrom: "Den blir tillgänglig från {time}.",
    interrupted: "Uppspelningen avbröts; ladda om sidan för att fortsätta.",
    playbackError: "Uppspelningsfel: {message}",
    posterAlt: "Affisch för {title}",
    videoLabel: "Höjdpunkt: {title}",
    league: "Liga",
    home: "Start",
  },
  "zh-Hans": {
    tagline: "每一个精彩瞬间，几秒内送达",
    skip: "跳到主要内容",
    language: "语言",
    search: "搜索",
    searchPlaceholder: "球队、球员、精彩瞬间…",
    searchLabel: "搜索集锦",
    liveNow: "正在直播",
    noLive: "目前没有直播。",
    goLive: "回到直播",
    behindLive: "落后直播 {time}",
    latest: "最新集锦",
    latestIn: "{league} 最新",
    upcoming: "即将开始的比赛",
    noUpcoming: "近几天没有比赛。",
    noHighlights: "暂无集锦：处理完成后会立即显示在这里。",
    loading: "加载中…",
    loadFailed: "无法加载此页面：{message}",
    teams: "球队",
    matches: "比赛",
    noMatches: "暂无比赛安排。",
    resultsFor: "“{q}”的搜索结果",
    noResults: "没有与“{q}”匹配的内容。",
    searchPrompt: "输入球队、球员或精彩瞬间进行搜索。",
    more: "显示更多",
    vs: "{home} 对 {away}",
    statusLive: "直播中",
    statusUpcoming: "未开始",
    statusFinished: "已结束",
    views: "{n} 次观看",
    play: "播放",
    pause: "暂停",
    mute: "静音",
    unmute: "取消静音",
    seek: "进度",
    quality: "画质",
    auto: "自动",
    fullscreen: "全屏",
    share: "复制链接",
    shareLabel: "此集锦的链接",
    copied: "链接已复制。",
    copyFailed: "请从文本框中复制链接。",
    related: "相关视频",
    shortcuts: "键盘快捷键",
    keyPlay: "播放或暂停",
    keySeek: "后退或前进 5 秒",
    keyFull: "全屏",
    keyMute: "静音或取消静音",
    notFound: "此集锦不存在或已被删除。",
    notAvailable: "此集锦在您所在的地区不可观看。",
    availableFrom: "将于 {time} 起可观看。",
    interrupted: "播放已中断；请刷新页面继续。",
    playbackError: "播放错误：{message}",
    posterAlt: "{title} 的封面",
    videoLabel: "集锦视频：{title}",
    league: "联赛",
    home: "首页",
  },
};

const STORAGE_KEY = "courtside.lang";

function supported(tag) {
  if (!tag) return null;
  const lower = tag.toLowerCase();
  const exact = LANGUAGES.find((l) => l.tag.toLowerCase() === lower);
  if (exact) return exact.tag;
  // zh-CN, zh-Hans-CN → zh-Hans; sv-SE → sv; en-GB → en
  const base = lower.split("-")[0];
  const same = LANGUAGES.find((l) => l.tag.toLowerCase().split("-")[0] === base);
  return same ? same.tag : null;
}

function storedChoice() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: fall back to the browser's languages
  }
}

/** The viewer's language: their stored choice, else the browser's first supported one. */
export function currentLang() {
  const fromStore = supported(storedChoice());
  if (fromStore) return fromStore;
  for (const tag of navigator.languages || [navigator.language]) {
    const match = supported(tag);
    if (match) return match;
  }
  return "en";
}

export function setLang(tag) {
  const chosen = supported(tag) || "en";
  try {
    localStorage.setItem(STORAGE_KEY, chosen);
  } catch {
    // the choice then lasts for this page only
  }
  document.documentElement.lang = chosen;
  return chosen;
}

/** The UI string ``key`` in the current language, with ``{name}`` placeholders filled in. */
export function t(key, vars = {}) {
  const table = STRINGS[currentLang()] || STRINGS.en;
  const template = table[key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(currentLang(), { dateStyle: "medium", timeStyle: "short" }).format(date);
}

export function formatNumber(n) {
  return new Intl.NumberFormat(currentLang()).format(n);
}
