"""Cutting a clip out of a live stream's DVR, from the stored objects only.

The top rung's ``dvr.m3u8`` says which segments cover a span of program date times. Segments
wholly inside the span are stream-copied; only the one or two partial segments at its edges
are decoded and re-encoded (every segment starts on a keyframe, so an edge decodes at most
one segment), trimmed to the exact instants with the stream's own codec parameters.

Each part becomes an MPEG-TS file first: TS carries H.264 parameter sets in band, so parts
from different encoder runs (different init segments) and the re-encoded edges, whose SPS/PPS
differ from the live encoder's, join without one part's decoder setup applying to another's
pictures. Every part's timestamps are moved so that its first picture lands where the
previous part's pictures end (sound moves with its pictures, so sync stays as it was live);
the TS files are joined end to end and remuxed (``-c copy``) into the MP4 that becomes the
clip's source. A gap between sessions (the publisher was away) has no media: the clip skips it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from statistics import median
from typing import Any, BinaryIO

from core.errors import InvalidInput, NotFound
from core.storage import ObjectStore
from transcode.commands import FORMAT_WHITELIST, PROTOCOL_WHITELIST, fenced_ffprobe
from transcode.playlists import Variant, parse_attributes, parse_master
from transcode.runner import run_capture, run_ffmpeg

# Less than a frame at 50 fps: a span edge this close to a segment edge is that edge.
EDGE_EPSILON_S = 0.015
PROBE_TIMEOUT_S = 30.0
_QUIET = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")
_PROFILES = {"high": "high", "main": "main", "constrained baseline": "baseline"}


class NoDvr(NotFound):
    """The stream has no DVR stored (never went on air, or its objects are gone)."""

    code = "no_dvr"


class OutsideWindow(InvalidInput):
    """The asked span is not (wholly) inside what the DVR still stores."""

    code = "outside_dvr_window"


# --- the DVR playlist ---------------------------------------------------------------------


@dataclass(frozen=True)
class DvrSegment:
    """One media segment: its key in the store, its init segment's key, its media sequence
    number, program date time, length and publisher session (discontinuity count)."""

    key: str
    init_key: str
    seq: int
    pdt: datetime
    duration_s: float
    session: int

    @property
    def end(self) -> datetime:
        return self.pdt + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class Dvr:
    """The top rung's DVR window: its segments in order, and whether the stream ended."""

    segments: tuple[DvrSegment, ...]
    ended: bool
    # The rung's frame rate (the master's FRAME-RATE): edges are cut on its frame grid.
    fps: float | None = None

    @property
    def start(self) -> datetime:
        return self.segments[0].pdt

    @property
    def end(self) -> datetime:
        return self.segments[-1].end


def dvr_master_key(stream_id: str) -> str:
    return f"live/{stream_id}/dvr.m3u8"


def top_variant(master_text: str) -> Variant:
    """The master's tallest variant (then the highest bandwidth)."""
    variants = parse_master(master_text)
    if not variants:
        raise NoDvr("the stream's DVR playlist lists no rung")

    def size(attributes: dict[str, str]) -> tuple[int, int]:
        height = attributes.get("RESOLUTION", "0x0").partition("x")[2]
        return int(height or 0), int(attributes.get("BANDWIDTH", "0") or 0)

    return max(variants, key=lambda variant: size(variant.attributes))


def read_dvr(store: ObjectStore, stream_id: str) -> Dvr:
    """The top rung's DVR playlist as stored now. Raises :class:`NoDvr` if there is none."""
    try:
        top = top_variant(store.get_bytes(dvr_master_key(stream_id)).decode())
        rung = f"live/{stream_id}/{top.uri}"
        dvr = parse_dvr(store.get_bytes(rung).decode(), rung.rpartition("/")[0])
    except FileNotFoundError:
        raise NoDvr("this stream has no DVR recording stored") from None
    if not dvr.segments:
        raise NoDvr("this stream has no segments stored yet")
    return replace(dvr, fps=_fps(top.attributes.get("FRAME-RATE", "")))


def _fps(text: str) -> float | None:
    try:
        fps = float(text)
    except ValueError:
        return None
    return fps if 1 <= fps <= 240 else None


def parse_dvr(text: str, folder: str) -> Dvr:
    """A media playlist's segments, keys under ``folder``, on a steady timeline (see
    :func:`steady`); a segment without its own program date time follows the previous one."""
    reader = _DvrReader(folder)
    for line in (raw.strip() for raw in text.splitlines()):
        reader.feed(line)
    return Dvr(tuple(steady(reader.segments)), reader.ended)


def steady(segments: Sequence[DvrSegment]) -> list[DvrSegment]:
    """Within each run of one encoder (same init segment, consecutive numbers) the media is
    continuous, so its segments are placed end to end from the run's median anchor (each
    program date time less the media time before it). A live encoder that stamps segments
    with the wall clock when they complete jitters by tens of milliseconds, and can be off
    by more on a run's first segment; the median ignores both, and spans then map onto the
    media that is really there."""
    steadied: list[DvrSegment] = []
    for run in _runs(segments):
        offsets = list(accumulate((s.duration_s for s in run[:-1]), initial=0.0))
        anchor = median(s.pdt.timestamp() - offset for s, offset in zip(run, offsets, strict=True))
        steadied += [
            replace(s, pdt=datetime.fromtimestamp(anchor + offset, UTC))
            for s, offset in zip(run, offsets, strict=True)
        ]
    return steadied


def _runs(segments: Sequence[DvrSegment]) -> list[list[DvrSegment]]:
    runs: list[list[DvrSegment]] = []
    for segment in segments:
        last = runs[-1][-1] if runs else None
        if last and last.init_key == segment.init_key and last.seq + 1 == segment.seq:
            runs[-1].append(segment)
        else:
            runs.append([segment])
    return runs


@dataclass
class _DvrReader:
    folder: str
    segments: list[DvrSegment] = field(default_factory=list)
    ended: bool = False
    seq: int = 0
    session: int = 0
    init: str = ""
    pdt: datetime | None = None
    duration_s: float | None = None

    def feed(self, line: str) -> None:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            self.seq = int(value)
        elif tag == "#EXT-X-DISCONTINUITY":
            self.session += 1
        elif tag == "#EXT-X-MAP":
            self.init = f"{self.folder}/{parse_attributes(value)['URI']}"
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            self.pdt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif tag == "#EXTINF":
            self.duration_s = float(value.partition(",")[0])
        elif tag == "#EXT-X-ENDLIST":
            self.ended = True
        elif line and not line.startswith("#"):
            self._segment(line)

    def _segment(self, uri: str) -> None:
        pdt = self.pdt or (self.segments[-1].end if self.segments else None)
        if pdt is None or self.duration_s is None or not self.init:
            raise NoDvr("the stream's DVR playlist lacks a date, length or map for a segment")
        self.segments.append(
            DvrSegment(
                f"{self.folder}/{uri}", self.init, self.seq, pdt, self.duration_s, self.session
            )
        )
        self.seq, self.pdt, self.duration_s = self.seq + 1, None, None


# --- choosing segments ----------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """The part ``start_s``..``end_s`` (seconds from its start) of a segment."""

    segment: DvrSegment
    start_s: float
    end_s: float

    @property
    def whole(self) -> bool:
        return self.start_s <= 0 and self.end_s >= self.segment.duration_s

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def check_span(dvr: Dvr, start: datetime, end: datetime) -> None:
    """Raise :class:`OutsideWindow` unless ``start``..``end`` is a span the DVR holds."""
    if end <= start:
        raise OutsideWindow("the clip must end after it starts")
    slack = timedelta(seconds=EDGE_EPSILON_S)
    if start < dvr.start - slack or end > dvr.end + slack:
        raise OutsideWindow(
            f"the clip must lie within the recording still stored: from {_iso(dvr.start)} "
            f"to {_iso(dvr.end)}"
        )


def select(dvr: Dvr, start: datetime, end: datetime) -> list[Piece]:
    """The pieces of segments covering ``start``..``end``, in order."""
    check_span(dvr, start, end)
    pieces = [
        _piece(segment, start, end, dvr.fps)
        for segment in dvr.segments
        if segment.end > start and segment.pdt < end
    ]
    pieces = [piece for piece in pieces if piece.duration_s > EDGE_EPSILON_S]
    if not pieces:
        raise OutsideWindow("nothing was recorded in that span (the publisher was away)")
    return pieces


def _piece(segment: DvrSegment, start: datetime, end: datetime, fps: float | None) -> Piece:
    head = _snap((start - segment.pdt).total_seconds(), segment.duration_s, fps)
    tail = _snap((end - segment.pdt).total_seconds(), segment.duration_s, fps)
    return Piece(segment, head, tail)


def _snap(offset_s: float, duration_s: float, fps: float | None) -> float:
    """Clamp to the segment, and onto its frame grid when the rate is known (an edge
    between two frames would put the re-encoded pictures half a frame off the copied
    ones); an offset within the epsilon of an edge is that edge."""
    if fps:
        offset_s = round(offset_s * fps) / fps
    if offset_s <= EDGE_EPSILON_S:
        return 0.0
    if offset_s >= duration_s - EDGE_EPSILON_S:
        return duration_s
    return offset_s


# --- planning the parts -----------------------------------------------------------------------


@dataclass(frozen=True)
class CopyRun:
    """Whole consecutive segments of one session: stream-copied."""

    segments: tuple[DvrSegment, ...]


@dataclass(frozen=True)
class Edge:
    """A partial segment at an edge of the span: decoded, trimmed and re-encoded."""

    piece: Piece


Part = CopyRun | Edge


def plan_parts(pieces: Sequence[Piece]) -> list[Part]:
    """Runs of whole segments (one session, consecutive numbers) and the edges, in order."""
    parts: list[Part] = []
    for piece in pieces:
        if not piece.whole:
            parts.append(Edge(piece))
        elif parts and _continues(parts[-1], piece.segment):
            last = parts[-1]
            assert isinstance(last, CopyRun)  # noqa: S101 - _continues checked it
            parts[-1] = CopyRun((*last.segments, piece.segment))
        else:
            parts.append(CopyRun((piece.segment,)))
    return parts


def _continues(part: Part, segment: DvrSegment) -> bool:
    if not isinstance(part, CopyRun):
        return False
    last = part.segments[-1]
    return last.init_key == segment.init_key and last.seq + 1 == segment.seq


# --- ffmpeg commands (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Codecs:
    """What an edge is re-encoded with: the live rung's own parameters."""

    profile: str
    level: int
    sample_rate: int
    channels: int
    video_bitrate: int | None
    audio_bitrate: int | None
    has_audio: bool


def _input(ffmpeg_bin: str, source: Path) -> list[str]:
    return [
        ffmpeg_bin,
        *_QUIET,
        *("-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", FORMAT_WHITELIST),
        # Timestamps stay the file's own: the placement below is computed on them.
        *("-copyts", "-i", str(source.absolute())),
    ]


def copy_command(ffmpeg_bin: str, source: Path, out: Path, shift_s: float) -> list[str]:
    """A run of whole segments (init + media, one fMP4 file) into MPEG-TS, copied, every
    timestamp moved by ``shift_s`` (onto the clip's timeline)."""
    return [
        *_input(ffmpeg_bin, source),
        *("-map", "0:v:0", "-map", "0:a:0?", "-map_metadata", "-1", "-c", "copy"),
        *("-output_ts_offset", f"{shift_s:.6f}", "-f", "mpegts", str(out)),
    ]


def edge_command(
    ffmpeg_bin: str, source: Path, out: Path, piece: Piece, codecs: Codecs, placed: Placement
) -> list[str]:
    """One segment (init + media) trimmed to the piece and re-encoded like the live rung.

    Both streams are cut at the same instants of the segment's timeline (its first picture
    is the program date time) and moved by the same amount, so they stay as in sync as they
    were live. Where the piece reaches the segment's edge the audio is left whole: a
    segment's audio starts and ends a little before its pictures do (the live muxer cuts
    it by decode time), and the neighbouring copied part carries on exactly where it stops."""
    t0, t1 = placed.video_start_s + piece.start_s, placed.video_start_s + piece.end_s
    # The piece's first picture (t0) lands where the part goes, sound moving with it.
    move = f"setpts=PTS{placed.shift_s - piece.start_s:+.6f}/TB"
    graph = [f"[0:v:0]trim=start={t0:.6f}:end={t1:.6f},{move}[v]"]
    maps = ["-map", "[v]"]
    if codecs.has_audio:
        bounds = [f"start={t0:.6f}"] if piece.start_s > 0 else []
        bounds += [f"end={t1:.6f}"] if piece.end_s < piece.segment.duration_s else []
        trim = f"atrim={':'.join(bounds)}," if bounds else ""
        graph.append(f"[0:a:0]{trim}a{move}[a]")
        maps += ["-map", "[a]"]
    return [
        *_input(ffmpeg_bin, source),
        *("-filter_complex", ";".join(graph), *maps, "-map_metadata", "-1"),
        *_video_args(codecs),
        *_audio_args(codecs),
        *("-f", "mpegts", str(out)),
    ]


def _video_args(codecs: Codecs) -> list[str]:
    args = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    args += ["-profile:v", codecs.profile, "-level:v", f"{codecs.level / 10:.1f}"]
    if codecs.video_bitrate:
        # Capped near the live rung's rate, so an edge does not spike the copied rung.
        rate = 2 * codecs.video_bitrate
        args += ["-maxrate", str(rate), "-bufsize", str(2 * rate)]
    return args


def _audio_args(codecs: Codecs) -> list[str]:
    if not codecs.has_audio:
        return []
    args = ["-c:a", "aac", "-ar", str(codecs.sample_rate), "-ac", str(codecs.channels)]
    return [*args, "-b:a", str(codecs.audio_bitrate or 128_000)]


@dataclass(frozen=True)
class Placement:
    """Where a part goes: its file's first picture (s, the file's own timeline) and how far
    every timestamp moves so that this picture lands at its place in the clip."""

    video_start_s: float
    shift_s: float


# Where the clip's first picture sits in the joined TS: room for audio that starts a little
# earlier, so that no timestamp goes negative.
TIMELINE_BASE_S = 10.0


def placement(video_start_s: float, clip_position_s: float) -> Placement:
    return Placement(video_start_s, TIMELINE_BASE_S + clip_position_s - video_start_s)


def remux_command(ffmpeg_bin: str, joined: Path, out: Path) -> list[str]:
    """The joined TS (parts already on one timeline) into the MP4, copied."""
    return [
        ffmpeg_bin,
        *_QUIET,
        *("-protocol_whitelist", "file", "-format_whitelist", "mpegts"),
        *("-f", "mpegts", "-i", str(joined.absolute())),
        *("-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart"),
        *("-f", "mp4", str(out.absolute())),
    ]


@dataclass(frozen=True)
class Starts:
    """Where a file's first picture and first audio are, in seconds of its timeline."""

    video: float
    audio: float | None


def parse_starts(json_text: str) -> Starts:
    streams: list[dict[str, Any]] = json.loads(json_text).get("streams", [])
    video: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "video"), {})
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    audio_start = float(audio.get("start_time", 0)) if audio else None
    return Starts(float(video.get("start_time", 0)), audio_start)


def probe_command(ffprobe_bin: str, source: Path) -> list[str]:
    return [
        *fenced_ffprobe(ffprobe_bin),
        *("-print_format", "json", "-show_streams", str(source.absolute())),
    ]


def parse_codecs(json_text: str) -> Codecs:
    """The re-encode parameters from ffprobe's streams of a live segment."""
    streams = json.loads(json_text).get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None or video.get("codec_name") != "h264":
        raise NoDvr("the stream's segments hold no H.264 video")
    audio = audio or {}
    return Codecs(
        profile=_PROFILES.get(str(video.get("profile", "")).lower(), "high"),
        level=int(video.get("level") or 40),
        sample_rate=int(audio.get("sample_rate") or 48000),
        channels=int(audio.get("channels") or 2),
        video_bitrate=_int(video.get("bit_rate")),
        audio_bitrate=_int(audio.get("bit_rate")),
        has_audio=bool(audio),
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


# --- running a cut ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CutTools:
    store: ObjectStore
    ffmpeg_bin: str = "ffmpeg"
    ffprobe_bin: str = "ffprobe"
    timeout_s: float = 600.0


@dataclass(frozen=True)
class Cut:
    """The MP4 made, how long the pieces it holds are, and the parts it was made of."""

    path: Path
    duration_s: float
    parts: tuple[Part, ...]


def cut_span(tools: CutTools, dvr: Dvr, start: datetime, end: datetime, work: Path) -> Cut:
    """The MP4 of ``start``..``end`` of the DVR, built under ``work``."""
    pieces = select(dvr, start, end)
    return assemble(tools, plan_parts(pieces), work, sum(p.duration_s for p in pieces))


def assemble(tools: CutTools, parts: Sequence[Part], work: Path, duration_s: float) -> Cut:
    """Each part into TS on the clip's timeline (copied, or an edge re-encoded), the TS
    files joined end to end, then remuxed into one MP4."""
    work.mkdir(parents=True, exist_ok=True)
    joined, position = work / "joined.ts", 0.0
    with joined.open("wb") as out:
        for index, part in enumerate(parts):
            ts = _part_to_ts(tools, part, work / f"part-{index}", position)
            _append(out, ts)
            position += part_length(part)
    clip = work / "clip.mp4"
    run_ffmpeg(remux_command(tools.ffmpeg_bin, joined, clip), timeout_s=tools.timeout_s)
    joined.unlink()
    return Cut(clip, duration_s, tuple(parts))


def part_length(part: Part) -> float:
    """Seconds of pictures the part holds."""
    if isinstance(part, Edge):
        return part.piece.duration_s
    return sum(segment.duration_s for segment in part.segments)


def _part_to_ts(tools: CutTools, part: Part, stem: Path, position_s: float) -> Path:
    source = _fetch(tools.store, _keys(part), stem.with_suffix(".mp4"))
    out = stem.with_suffix(".ts")
    probed = _probe(tools, source)
    placed = placement(parse_starts(probed).video, position_s)
    if isinstance(part, Edge):
        codecs = parse_codecs(probed)
        argv = edge_command(tools.ffmpeg_bin, source, out, part.piece, codecs, placed)
    else:
        argv = copy_command(tools.ffmpeg_bin, source, out, placed.shift_s)
    run_ffmpeg(argv, timeout_s=tools.timeout_s)
    source.unlink()
    return out


def _append(out: BinaryIO, part: Path) -> None:
    with part.open("rb") as source:
        shutil.copyfileobj(source, out, 1 << 20)
    part.unlink()


def _keys(part: Part) -> list[str]:
    segments = (part.piece.segment,) if isinstance(part, Edge) else part.segments
    return [segments[0].init_key, *(segment.key for segment in segments)]


def _fetch(store: ObjectStore, keys: Sequence[str], path: Path) -> Path:
    """The objects end to end in one file: an init segment and its media is an fMP4 file."""
    with path.open("wb") as out:
        for key in keys:
            for chunk in store.iter_range(key):
                out.write(chunk)
    return path


def _probe(tools: CutTools, source: Path) -> str:
    return run_capture(probe_command(tools.ffprobe_bin, source), timeout_s=PROBE_TIMEOUT_S)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
