"""Demo content for the quick start: a league with competitions, teams and matches (one
finished, one live, two upcoming), a partner key, and highlight clips in three languages.

Seeding is idempotent: rows are found by their natural keys (slugs, titles, a match's season
and teams) and brought up to date; the match times move with the clock on every run, so the
"live" match is live whenever the demo is seeded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal, create_api_key
from core.models import (
    Asset,
    AssetTranslation,
    Competition,
    League,
    LiveState,
    LiveStream,
    Match,
    RightsGrant,
    Role,
    Season,
    Team,
    utcnow,
)
from core.settings import Settings
from core.storage import ObjectStore
from ingest import live_streams
from ingest.live_streams import NewStream
from ingest.uploads import UploadMeta, accept_upload
from transcode.runner import run_ffmpeg

DEMO_LEAGUE = "demo"
DEMO_SEASON = "2026"
SHARED_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "bigbuckbunny.mp4"
# The demo's own language and the two others every demo text is given in.
DEMO_LANG = "en"
DEMO_LANGS = (DEMO_LANG, "zh-Hans", "sv")


@dataclass(frozen=True)
class DemoTeam:
    slug: str
    name: str
    names: Mapping[str, str]


TEAMS = (
    DemoTeam("harbour-hawks", "Harbour Hawks",
             {"en": "Harbour Hawks", "zh-Hans": "港湾雄鹰", "sv": "Hamnhökarna"}),
    DemoTeam("northern-lights", "Northern Lights",
             {"en": "Northern Lights", "zh-Hans": "北极光", "sv": "Norrskenet"}),
    DemoTeam("river-city-rovers", "River City Rovers",
             {"en": "River City Rovers", "zh-Hans": "河城流浪者", "sv": "Älvstadens Vandrare"}),
    DemoTeam("summit-bears", "Summit Bears",
             {"en": "Summit Bears", "zh-Hans": "峰顶熊", "sv": "Toppbjörnarna"}),
)  # fmt: skip

COMPETITIONS = (("premier-division", "Premier Division"), ("demo-cup", "Demo Cup"))


@dataclass(frozen=True)
class DemoMatch:
    key: str
    competition: str
    home: str  # team slugs
    away: str
    kickoff: timedelta  # from now
    played: timedelta | None = None  # kickoff to final whistle, when it has been blown


MATCHES = (
    DemoMatch("final", "premier-division", "harbour-hawks", "northern-lights",
              -timedelta(days=2), timedelta(minutes=105)),
    DemoMatch("live", "premier-division", "river-city-rovers", "summit-bears",
              -timedelta(minutes=30)),
    DemoMatch("cup-tie", "demo-cup", "northern-lights", "river-city-rovers", timedelta(days=1)),
    DemoMatch("derby", "premier-division", "summit-bears", "harbour-hawks", timedelta(days=3)),
)  # fmt: skip


@dataclass(frozen=True)
class DemoClip:
    title: str
    description: str
    video: str  # an ffmpeg lavfi source
    seconds: int = 6
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    match: str | None = None  # a DemoMatch key
    # language → (title, description), beside the English of ``title``/``description``
    translations: Mapping[str, tuple[str, str]] = field(default_factory=dict)


FINAL_TEAMS = ("harbour-hawks", "northern-lights")

CLIPS = (
    DemoClip(
        "Last-minute winner", "Stoppage-time strike seals the derby.", "testsrc2=s=1280x720:r=30",
        tags=("goal", "last-minute"), teams=FINAL_TEAMS, match="final",
        translations={
            "zh-Hans": ("补时绝杀", "伤停补时的一脚劲射锁定了德比的胜局。"),
            "sv": ("Segermål i sista minuten", "Ett skott på övertid avgör derbyt."),
        },
    ),
    DemoClip(
        "Double save", "The keeper denies both efforts in two seconds.",
        "smptehdbars=s=1280x720:r=30",
        tags=("save", "goalkeeper"), teams=FINAL_TEAMS, match="final",
        translations={
            "zh-Hans": ("连续扑救", "门将在两秒内接连挡出两次射门。"),
            "sv": ("Dubbelräddning", "Målvakten stoppar två avslut på två sekunder."),
        },
    ),
    DemoClip(
        "Buzzer beater", "Three from way downtown as time expires.", "rgbtestsrc=s=960x540:r=30",
        tags=("buzzer-beater", "three-pointer"), teams=FINAL_TEAMS, match="final",
        translations={
            "zh-Hans": ("压哨绝杀", "终场哨响前，超远距离三分命中。"),
            "sv": ("Avgörande skott vid slutsignalen",
                   "En trepoängare långt utifrån när tiden rinner ut."),
        },
    ),
)  # fmt: skip

BUNNY = DemoClip(
    "Big Buck Bunny (sample footage)", "Blender Foundation, CC BY 3.0.", "",
    tags=("sample",), teams=("river-city-rovers", "summit-bears"), match="live",
    translations={
        "zh-Hans": ("大雄兔（示例素材）", "Blender 基金会作品，采用 CC BY 3.0 许可。"),
        "sv": ("Big Buck Bunny (exempelmaterial)", "Blender Foundation, licens CC BY 3.0."),
    },
)  # fmt: skip


@dataclass(frozen=True)
class DemoSeed:
    league: str
    partner_key: str
    queued: list[str]
    # The demo's live stream for its live match, and its key (shown once: a new one each run).
    live_stream_id: str = ""
    stream_key: str = ""


LIVE_TITLE = "Rovers v Bears, live"
LIVE_TRANSLATIONS = {"zh-Hans": "流浪者对熊队（直播）", "sv": "Rovers mot Bears, direkt"}


def clip_argv(ffmpeg_bin: str, clip: DemoClip, out: Path) -> list[str]:
    """A short H.264/AAC clip from lavfi sources (no input files, so no whitelist is needed)."""
    tone = f"sine=frequency=440:sample_rate=48000:duration={clip.seconds}"
    return [
        ffmpeg_bin, "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"{clip.video}:d={clip.seconds}",
        "-f", "lavfi", "-i", tone,
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
        "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart",
        "-progress", "pipe:1", str(out),
    ]  # fmt: skip


def _league(session: Session) -> League:
    league = session.scalar(select(League).where(League.slug == DEMO_LEAGUE))
    if league is None:
        league = League(slug=DEMO_LEAGUE, name="Courtside Demo League")
        session.add(league)
        session.flush()
    return league


def _worldwide_grant(session: Session, league: League) -> None:
    """The demo says so explicitly: its highlights and live streams are licensed everywhere,
    so a newcomer on 127.0.0.1 (no location) can watch them. Real leagues list territories."""
    for license_type in ("highlights", "live"):
        exists = session.scalar(
            select(RightsGrant.id).where(
                RightsGrant.scope_type == "league",
                RightsGrant.scope_id == str(league.id),
                RightsGrant.license_type == license_type,
            )
        )
        if exists is None:
            session.add(
                RightsGrant(
                    scope_type="league",
                    scope_id=str(league.id),
                    license_type=license_type,
                    status="approved",
                    worldwide=True,
                    licensee="Courtside demo",
                    created_by="seed-demo",
                )
            )


# --- fixtures: competitions, teams, matches ---------------------------------------------------


def _competition_seasons(session: Session, league: League) -> dict[str, Season]:
    """Each demo competition's demo season, by competition slug (created when missing)."""
    seasons: dict[str, Season] = {}
    for slug, name in COMPETITIONS:
        competition = session.scalar(
            select(Competition).where(Competition.league_id == league.id, Competition.slug == slug)
        ) or Competition(league_id=league.id, slug=slug, name=name)
        session.add(competition)
        session.flush()
        seasons[slug] = _season(session, competition)
    return seasons


def _season(session: Session, competition: Competition) -> Season:
    season = session.scalar(
        select(Season).where(Season.competition_id == competition.id, Season.name == DEMO_SEASON)
    ) or Season(competition_id=competition.id, name=DEMO_SEASON)
    session.add(season)
    session.flush()
    return season


def _teams(session: Session, league: League) -> dict[str, Team]:
    """The demo teams by slug, their names brought up to date."""
    found = {t.slug: t for t in session.scalars(select(Team).where(Team.league_id == league.id))}
    for demo in TEAMS:
        team = found.get(demo.slug) or Team(league_id=league.id, slug=demo.slug)
        team.name, team.names = demo.name, dict(demo.names)
        session.add(team)
        found[demo.slug] = team
    session.flush()
    return found


def _matches(
    session: Session, seasons: Mapping[str, Season], teams: Mapping[str, Team], now: datetime
) -> dict[str, Match]:
    """The demo matches by key, their times set relative to ``now``."""
    found: dict[str, Match] = {}
    for demo in MATCHES:
        home, away, season = teams[demo.home], teams[demo.away], seasons[demo.competition]
        match = session.scalar(
            select(Match).where(
                Match.season_id == season.id,
                Match.home_team_id == home.id,
                Match.away_team_id == away.id,
            )
        ) or Match(season_id=season.id, home_team_id=home.id, away_team_id=away.id)
        match.home, match.away = home.name, away.name
        match.kickoff = now + demo.kickoff
        match.final_whistle = match.kickoff + demo.played if demo.played else None
        session.add(match)
        found[demo.key] = match
    session.flush()
    return found


# --- clips' metadata --------------------------------------------------------------------------


def _describe(
    asset: Asset, clip: DemoClip, teams: Mapping[str, Team], matches: Mapping[str, Match]
) -> None:
    """Tags, teams, match and translations of a demo clip (replacing what a run left)."""
    asset.lang, asset.description = DEMO_LANG, clip.description
    asset.tags = list(clip.tags)
    asset.teams = [teams[slug].name for slug in clip.teams]
    asset.linked_teams = [teams[slug] for slug in clip.teams]
    asset.match_id = matches[clip.match].id if clip.match else None
    have = {t.lang: t for t in asset.translations}
    for lang, (title, description) in clip.translations.items():
        row = have.get(lang) or AssetTranslation(lang=lang)
        row.title, row.description = title, description
        if lang not in have:
            asset.translations.append(row)


def describe_demo(
    session: Session, league: League, clips: Sequence[DemoClip], now: datetime
) -> dict[str, Match]:
    """The demo's competitions, teams and matches, and the metadata of its clips already in
    the league (matched by title). Returns the matches by their demo key."""
    seasons = _competition_seasons(session, league)
    teams = _teams(session, league)
    matches = _matches(session, seasons, teams, now)
    by_title = {clip.title: clip for clip in clips}
    assets = session.scalars(
        select(Asset).where(Asset.league_id == league.id, Asset.title.in_(list(by_title)))
    ).all()
    for asset in assets:
        _describe(asset, by_title[asset.title], teams, matches)
    session.flush()
    return matches


# --- seeding ----------------------------------------------------------------------------------


def _existing_titles(session: Session, league: League) -> set[str]:
    return set(session.scalars(select(Asset.title).where(Asset.league_id == league.id)))


def seed_demo(
    session: Session,
    store: ObjectStore,
    *,
    settings: Settings,
    shared_clip: Path = SHARED_CLIP,
    clips: Sequence[DemoClip] = CLIPS,
) -> DemoSeed:
    """Idempotent for the league, its fixtures and clips; a new partner key each run (keys
    are shown once)."""
    league = _league(session)
    _worldwide_grant(session, league)
    key, secret = create_api_key(session, role=Role.PARTNER, leagues=[league], name="demo partner")
    partner = Principal(
        kind="api_key", id=key.id, role=Role.PARTNER, league_ids=frozenset({league.id})
    )
    have = _existing_titles(session, league)
    queued: list[str] = []
    with tempfile.TemporaryDirectory(prefix="courtside-demo-") as tmp:
        for source, meta in _sources(Path(tmp), settings.ffmpeg_bin, shared_clip, have, clips):
            with source.open("rb") as stream:
                asset = accept_upload(session, store, partner, meta, stream, max_bytes=1 << 30)
            queued.append(asset.id)
    matches = describe_demo(session, league, [*clips, BUNNY], utcnow())
    live, stream_key = _live_stream(session, partner, settings, league, matches["live"])
    return DemoSeed(
        league=league.slug,
        partner_key=secret,
        queued=queued,
        live_stream_id=live.id,
        stream_key=stream_key,
    )


def _live_stream(
    session: Session, partner: Principal, settings: Settings, league: League, match: Match
) -> tuple[LiveStream, str]:
    """The demo's stream for its live match, idle until someone publishes to it; a stream
    left from an earlier run gets a new key (keys are shown once)."""
    existing = session.scalar(
        select(LiveStream)
        .join(Asset, Asset.id == LiveStream.id)
        .where(Asset.league_id == league.id, Asset.title == LIVE_TITLE)
        .where(LiveStream.state.not_in([LiveState.ENDED, LiveState.ERRORED]))
    )
    if existing is not None:
        return live_streams.rotate_key(session, partner, existing.id)
    data = NewStream(title=LIVE_TITLE, match_id=match.id)
    stream, key = live_streams.create_stream(session, partner, settings, league.slug, data)
    for lang, title in LIVE_TRANSLATIONS.items():
        stream.asset.translations.append(AssetTranslation(lang=lang, title=title))
    return stream, key


def _sources(
    tmp: Path, ffmpeg_bin: str, shared_clip: Path, have: set[str], clips: Sequence[DemoClip]
) -> list[tuple[Path, UploadMeta]]:
    found: list[tuple[Path, UploadMeta]] = []
    for index, clip in enumerate(c for c in clips if c.title not in have):
        out = tmp / f"clip{index}.mp4"
        run_ffmpeg(clip_argv(ffmpeg_bin, clip, out), timeout_s=120)
        meta = UploadMeta(DEMO_LEAGUE, clip.title, clip.description, out.name, "video/mp4")
        found.append((out, meta))
    if shared_clip.is_file() and BUNNY.title not in have:
        meta = UploadMeta(DEMO_LEAGUE, BUNNY.title, BUNNY.description, "bbb.mp4", "video/mp4")
        found.append((shared_clip, meta))
    return found


def demo_publish_command(rtmp_url: str, stream_key: str) -> str:
    """A shell line that pushes a test pattern (testsrc draws its own running clock, no
    fonts needed) and a tone, as OBS would."""
    return (
        "ffmpeg -re -f lavfi -i testsrc=size=1280x720:rate=30 -re -f lavfi -i sine=frequency=440 "
        "-c:v libx264 -preset veryfast -tune zerolatency -g 30 -b:v 3M -pix_fmt yuv420p "
        f"-c:a aac -f flv {rtmp_url.rstrip('/')}/{stream_key}"
    )
