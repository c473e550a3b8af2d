"""Demo content for the quick start: a league, a partner key and a few highlight clips."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal, create_api_key
from core.models import Asset, League, RightsGrant, Role
from core.storage import ObjectStore
from ingest.uploads import UploadMeta, accept_upload
from transcode.runner import run_ffmpeg

DEMO_LEAGUE = "demo"
SHARED_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "bigbuckbunny.mp4"


@dataclass(frozen=True)
class DemoClip:
    title: str
    description: str
    video: str  # an ffmpeg lavfi source
    seconds: int = 6


CLIPS = (
    DemoClip(
        "Last-minute winner", "Stoppage-time strike seals the derby.", "testsrc2=s=1280x720:r=30"
    ),
    DemoClip(
        "Double save",
        "The keeper denies both efforts in two seconds.",
        "smptehdbars=s=1280x720:r=30",
    ),
    DemoClip(
        "Buzzer beater", "Three from way downtown as time expires.", "rgbtestsrc=s=960x540:r=30"
    ),
)


@dataclass(frozen=True)
class DemoSeed:
    league: str
    partner_key: str
    queued: list[str]


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
    """The demo says so explicitly: its highlights are licensed everywhere, so a newcomer on
    127.0.0.1 (no location) can watch them. Real leagues list their territories."""
    exists = session.scalar(
        select(RightsGrant.id).where(
            RightsGrant.scope_type == "league", RightsGrant.scope_id == str(league.id)
        )
    )
    if exists is None:
        session.add(
            RightsGrant(
                scope_type="league",
                scope_id=str(league.id),
                license_type="highlights",
                status="approved",
                worldwide=True,
                licensee="Courtside demo",
                created_by="seed-demo",
            )
        )


def _existing_titles(session: Session, league: League) -> set[str]:
    return set(session.scalars(select(Asset.title).where(Asset.league_id == league.id)))


def seed_demo(
    session: Session, store: ObjectStore, *, ffmpeg_bin: str, shared_clip: Path = SHARED_CLIP
) -> DemoSeed:
    """Idempotent for the league and clips; a new partner key each run (keys are shown once)."""
    league = _league(session)
    _worldwide_grant(session, league)
    key, secret = create_api_key(session, role=Role.PARTNER, leagues=[league], name="demo partner")
    partner = Principal(
        kind="api_key", id=key.id, role=Role.PARTNER, league_ids=frozenset({league.id})
    )
    have = _existing_titles(session, league)
    queued: list[str] = []
    with tempfile.TemporaryDirectory(prefix="courtside-demo-") as tmp:
        for source, meta in _sources(Path(tmp), ffmpeg_bin, shared_clip, have):
            with source.open("rb") as stream:
                asset = accept_upload(session, store, partner, meta, stream, max_bytes=1 << 30)
            queued.append(asset.id)
    return DemoSeed(league=league.slug, partner_key=secret, queued=queued)


def _sources(
    tmp: Path, ffmpeg_bin: str, shared_clip: Path, have: set[str]
) -> list[tuple[Path, UploadMeta]]:
    found: list[tuple[Path, UploadMeta]] = []
    for index, clip in enumerate(c for c in CLIPS if c.title not in have):
        out = tmp / f"clip{index}.mp4"
        run_ffmpeg(clip_argv(ffmpeg_bin, clip, out), timeout_s=120)
        meta = UploadMeta(DEMO_LEAGUE, clip.title, clip.description, out.name, "video/mp4")
        found.append((out, meta))
    bunny = "Big Buck Bunny (sample footage)"
    if shared_clip.is_file() and bunny not in have:
        meta = UploadMeta(
            DEMO_LEAGUE, bunny, "Blender Foundation, CC BY 3.0.", "bbb.mp4", "video/mp4"
        )
        found.append((shared_clip, meta))
    return found
