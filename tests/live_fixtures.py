"""A live stream's storage layout, as the live transcoder writes it, made by ffmpeg directly.

Two rungs (``360p`` 640x360 and ``180p`` 320x180, 25 fps), 1 s fMP4 segments with a keyframe
every second and AAC muxed into every segment, one init segment per publisher session, a
discontinuity (and a gap in the program date times: the publisher was away) between
sessions, a program date time on every segment, and ``dvr.m3u8`` with or without
``EXT-X-ENDLIST``. Media sequence numbers run on across sessions, as in the real layout.

Encoding happens once per folder (:func:`render_sessions`); :func:`write_live_layout` then
copies the files into a store under ``live/<id>/`` (segments before playlists).
"""

from __future__ import annotations

import subprocess  # noqa: TID251 - the sync check decodes with ffmpeg
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from core.storage import ObjectStore
from transcode.runner import run_ffmpeg

FPS = 25
RUNGS = (("360p", 640, 360, 900_000), ("180p", 320, 180, 300_000))
TOP_RUNG = RUNGS[0][0]
FFMPEG_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Session:
    """One publisher session: its number (``init-<number>.mp4``), first media sequence
    number, length in whole seconds, and the pause before it (publisher away)."""

    number: int
    first_seq: int
    seconds: int
    gap_before_s: float = 0.0
    tone_hz: int = 440


# Sync marks: a white picture and a beep together, twice a second (at .2 and .6 s, on the
# 25 fps frame grid), so a cut's sync can be measured from what it plays.
# (The millisecond keeps float error from dropping the picture at 1.2 s, say.)
_MARKED = "between(mod(t+0.001,1),0.2005,0.24)+between(mod(t+0.001,1),0.6005,0.64)"
FLASHES = f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='{_MARKED}'"


def beeps(tone_hz: int, seconds: float) -> str:
    """A lavfi audio source: silence but for a beep at every mark."""
    return f"aevalsrc='({_MARKED})*sin(2*PI*{tone_hz}*t)':s=48000:d={seconds:g}"


@dataclass(frozen=True)
class Marks:
    """When a file shows its white pictures and plays its beeps (s, one timeline)."""

    flashes: tuple[float, ...]
    beeps: tuple[float, ...]

    def inside(self, duration_s: float, margin_s: float = 0.08) -> Marks:
        """Without the marks a cut may have halved (at its very start or end)."""

        def keep(times: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(t for t in times if margin_s <= t <= duration_s - margin_s)

        return Marks(keep(self.flashes), keep(self.beeps))

    def offsets_s(self) -> list[float]:
        """For every flash, the nearest beep's time less the flash's (sound late: > 0)."""
        return [min((b - f for b in self.beeps), key=abs) for f in self.flashes]

    def in_step(self, baseline_s: float = 0.0, tolerance_s: float = 0.045) -> bool:
        """Every flash has its beep, as far from it as ``baseline_s`` (what the original
        had) give or take ``tolerance_s`` (about a frame), and no beep is without flash."""
        offsets = self.offsets_s() if self.beeps else []
        return (
            bool(self.flashes)
            and len(self.flashes) == len(self.beeps)
            and all(abs(offset - baseline_s) <= tolerance_s for offset in offsets)
        )


def find_marks(path: Path, work: Path) -> Marks:
    """Decode ``path`` once: the pictures' mean brightness and the audio's silences."""
    stats = work / "yavg.txt"
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-i", str(path)]
    argv += ["-vf", f"signalstats,metadata=print:key=lavfi.signalstats.YAVG:file={stats}"]
    argv += ["-af", "silencedetect=n=-40dB:d=0.01", "-f", "null", "-"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return Marks(_flashes(stats.read_text()), _beeps(done.stderr))


def _flashes(text: str) -> tuple[float, ...]:
    times, when = [], 0.0
    for line in text.splitlines():
        if line.startswith("frame:"):
            when = float(line.rpartition("pts_time:")[2])
        elif line.startswith("lavfi.signalstats.YAVG=") and float(line.partition("=")[2]) > 150:
            times.append(when)
    # One flash lasts one picture; two in a row would be one mark.
    return tuple(t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 0.1)


def _beeps(stderr: str) -> tuple[float, ...]:
    """Silence ends followed shortly by a silence start: a beep (the stream's end, which
    also ends a silence, is not one)."""
    events = [
        (kind, float(line.partition(f"{kind}: ")[2].split()[0]))
        for line in stderr.splitlines()
        for kind in ("silence_start", "silence_end")
        if f"{kind}: " in line
    ]
    return tuple(
        when
        for (kind, when), (after, then) in pairwise(events)
        if kind == "silence_end" and after == "silence_start" and then - when < 0.1
    )


DEFAULT_SESSIONS = (Session(1, 0, 8), Session(2, 8, 6, gap_before_s=3.0, tone_hz=660))


@dataclass(frozen=True)
class Segment:
    seq: int
    session: int
    pdt: datetime
    duration_s: float = 1.0

    @property
    def end(self) -> datetime:
        return self.pdt + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class LiveLayout:
    """What was written: the stream id, its segments (in order) and whether it ended."""

    stream_id: str
    segments: tuple[Segment, ...]
    ended: bool

    @property
    def start(self) -> datetime:
        return self.segments[0].pdt

    @property
    def end(self) -> datetime:
        return self.segments[-1].end

    def by_seq(self, seq: int) -> Segment:
        return next(segment for segment in self.segments if segment.seq == seq)


def render_sessions(folder: Path, sessions: Sequence[Session] = DEFAULT_SESSIONS) -> Path:
    """Encode every session's segments for both rungs under ``folder/<rung>/`` (once)."""
    for session in sessions:
        done = folder / f".session-{session.number}-{session.first_seq}-{session.seconds}"
        if not done.exists():
            run_ffmpeg(_session_command(folder, session), timeout_s=FFMPEG_TIMEOUT_S)
            done.touch()
    return folder


def _session_command(folder: Path, session: Session) -> list[str]:
    seconds = session.seconds
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    video = f"testsrc2=size=640x360:rate={FPS}:duration={seconds},{FLASHES}"
    argv += ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", beeps(session.tone_hz, seconds)]
    argv += ["-filter_complex", "[0:v]split=2[v0][t];[t]scale=320:180[v1]"]
    for index, (rung, _width, _height, bandwidth) in enumerate(RUNGS):
        (folder / rung).mkdir(parents=True, exist_ok=True)
        argv += ["-map", f"[v{index}]", "-map", "1:a", *_codecs(bandwidth)]
        argv += _hls_output(folder / rung, session)
    return argv


def _codecs(bandwidth: int) -> list[str]:
    # veryfast has B-frames and CABAC: the cut must cope with composition offsets.
    video = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    video += ["-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0"]
    video += ["-b:v", str(bandwidth)]
    return [*video, "-c:a", "aac", "-b:a", "64k", "-ac", "2"]


def _hls_output(rung_dir: Path, session: Session) -> list[str]:
    return [
        *("-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4"),
        *("-hls_playlist_type", "vod", "-start_number", str(session.first_seq)),
        *("-hls_fmp4_init_filename", f"init-{session.number}.mp4"),
        *("-hls_segment_filename", str(rung_dir / "%d.m4s")),
        str(rung_dir / f"ffmpeg-{session.number}.m3u8"),
    ]


def plan_segments(
    start: datetime, sessions: Sequence[Session] = DEFAULT_SESSIONS
) -> tuple[Segment, ...]:
    """Every segment with its program date time: sessions back to back, plus their gaps."""
    segments: list[Segment] = []
    clock = start
    for session in sessions:
        clock += timedelta(seconds=session.gap_before_s)
        for index in range(session.seconds):
            segments.append(Segment(session.first_seq + index, session.number, clock))
            clock += timedelta(seconds=1)
    return tuple(segments)


def write_live_layout(
    store: ObjectStore,
    stream_id: str,
    rendered: Path,
    *,
    start: datetime | None = None,
    ended: bool = True,
    sessions: Sequence[Session] = DEFAULT_SESSIONS,
) -> LiveLayout:
    """Store the rendered segments and the playlists of the layout under ``live/<id>/``."""
    begin = start or (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
    segments = plan_segments(begin, sessions)
    prefix = f"live/{stream_id}"
    for rung, *_ in RUNGS:
        for session in sessions:
            init = f"init-{session.number}.mp4"
            store.put_file(f"{prefix}/{rung}/{init}", rendered / rung / init)
        for segment in segments:
            name = f"{segment.seq}.m4s"
            store.put_file(f"{prefix}/{rung}/{name}", rendered / rung / name)
        dvr = media_playlist(segments, ended=ended)
        store.put_bytes(f"{prefix}/{rung}/dvr.m3u8", dvr.encode())
        store.put_bytes(
            f"{prefix}/{rung}/live.m3u8", media_playlist(segments[-12:], ended=ended).encode()
        )
    store.put_bytes(f"{prefix}/dvr.m3u8", master_playlist("dvr.m3u8").encode())
    store.put_bytes(f"{prefix}/master.m3u8", master_playlist("live.m3u8").encode())
    return LiveLayout(stream_id, segments, ended)


def media_playlist(segments: Sequence[Segment], *, ended: bool) -> str:
    """A rung's playlist over ``segments``: a map per session, PDT on every segment."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1"]
    lines += [f"#EXT-X-MEDIA-SEQUENCE:{segments[0].seq}", "#EXT-X-DISCONTINUITY-SEQUENCE:0"]
    session = None
    for segment in segments:
        if segment.session != session:
            if session is not None:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f'#EXT-X-MAP:URI="init-{segment.session}.mp4"')
            session = segment.session
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(segment.pdt)}")
        lines += [f"#EXTINF:{segment.duration_s:.3f},", f"{segment.seq}.m4s"]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(media_name: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rung, width, height, bandwidth in RUNGS:
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={width}x{height},"
            f'CODECS="avc1.4d401e,mp4a.40.2",FRAME-RATE={FPS}'
        )
        lines.append(f"{rung}/{media_name}")
    return "\n".join(lines) + "\n"


def _pdt(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
