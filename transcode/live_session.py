"""One live stream's task body: encoder runs, segments and playlists to the store, health,
drops and returns, the end.

The loop talks to the database only through :class:`LiveControl` (the ingest layer
implements it), and to the store through :class:`~core.storage.ObjectStore`:

- each segment ffmpeg completes is uploaded as ``<rung>/<seq>.m4s`` (``seq`` global), the
  run's init segment before its first one, and only then are ``<rung>/live.m3u8`` and
  ``<rung>/dvr.m3u8`` rewritten; segments that leave the DVR window are deleted after that;
- the masters are written once every rung has a segment, and the stream goes live;
- a run ends when ffmpeg's input does (or stalls); within the reconnect grace a returning
  publisher starts the next run (``EXT-X-DISCONTINUITY``, new ``EXT-X-MAP``); past it every
  playlist gets ``EXT-X-ENDLIST`` and the stream ends;
- a heartbeat that finds another task in charge stops everything at once (takeover).

``EXT-X-PROGRAM-DATE-TIME`` of a segment is the wall-clock time its first frame reached the
encoder: the run's origin (the earliest ``now - out_time`` ffmpeg's progress gave until the
estimates settled after start-up, i.e. the arrival of frame 0 plus the least encoder latency
seen) plus the segment's start in the run, so a run's stamps advance exactly with its media.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from core.errors import ObjectNotFound, StorageError
from core.storage import ObjectStore
from transcode.errors import FFmpegFailed, TranscodeError
from transcode.live_encoder import (
    EncoderJob,
    EncoderStats,
    LocalSegment,
    completed_segments,
    live_command,
    parse_progress,
)
from transcode.live_ladder import LiveInput, LiveLadder, choose_ladder, probe_live
from transcode.live_playlists import (
    LiveSegment,
    MasterVariant,
    RungPlaylist,
    avc_codec,
    parse_media,
    render_master,
    render_media,
    target_duration_for,
)
from transcode.runner import LongProcess

log = logging.getLogger(__name__)

LIVE_PLAYLIST = "live.m3u8"
DVR_PLAYLIST = "dvr.m3u8"
MASTER = "master.m3u8"
TICK_S = 0.1
HEARTBEAT_S = 1.0
# After ffmpeg's input ends with the publisher still marked as on air, on_publish_done may
# just be late: wait this long before starting again for the same publisher.
SAME_PUBLISHER_RESTART_S = 2.0
# Encoder runs in a row that produced nothing while a publisher was there: then give up.
MAX_FRUITLESS_RUNS = 3
SPEED_ALERT_BELOW = 0.95
ALERT_AFTER_S = 5.0
DROPS_ALERT_COUNT = 15
DROPS_WINDOW_S = 10.0
# The run's origin estimate has settled when two in a row agree this closely (or the output
# has run this long: a machine too busy to agree still gets its segments out).
SETTLED_WITHIN_S = 0.1
SETTLE_BY_OUT_TIME_S = 4.0
STORE_TRIES = 3


def stream_prefix(stream_id: str) -> str:
    return f"live/{stream_id}/"


def master_key(stream_id: str) -> str:
    return f"{stream_prefix(stream_id)}{MASTER}"


@dataclass(frozen=True)
class PublisherStatus:
    """The stream row as the loop needs it."""

    publishing: bool
    sessions: int
    left_at: datetime | None
    active: bool  # False once the stream ended, errored or was deleted elsewhere
    ladder: list[dict[str, object]]


class LiveControl(Protocol):
    """The database side of a live task (implemented in ``ingest.live_control``)."""

    def status(self) -> PublisherStatus: ...

    def heartbeat(self, health: dict[str, object]) -> bool:
        """Write health and heartbeat if this task still holds the stream; False if not."""
        ...

    def save_ladder(self, ladder: list[dict[str, object]]) -> None: ...

    def went_live(self, master_key: str) -> None:
        """First segments stored: state live, asset playable, ``live.started`` (once)."""
        ...

    def alert(self, name: str, active: bool, data: dict[str, object]) -> None: ...

    def finished(self, error: TranscodeError | None) -> None:
        """State ended (and the replay queued), or errored with the error's code/message."""
        ...


@dataclass(frozen=True)
class LiveConfig:
    stream_id: str
    input_url: str
    work_root: Path
    ffmpeg_bin: str
    ffprobe_bin: str
    segment_s: float
    window_segments: int
    dvr_window_s: int
    grace_s: float
    budget_cores: float
    stall_s: float


class Lost(Exception):
    """Another task holds the stream now: stop without touching it."""


# --- health and alerts --------------------------------------------------------------------


@dataclass
class Health:
    """What the partner sees of the stream, and the alerts raised on transitions."""

    control: LiveControl
    clock: Callable[[], float] = time.monotonic
    source: LiveInput | None = None
    ladder: LiveLadder | None = None
    stats: EncoderStats | None = None
    last_segment_at: datetime | None = None
    input_gone: bool = False
    active: set[str] = field(default_factory=set)
    _slow_since: float | None = None
    _fast_since: float | None = None
    _drops: list[tuple[float, int]] = field(default_factory=list)

    def observe(self, stats: EncoderStats) -> None:
        previous, self.stats = self.stats, stats
        now = self.clock()
        # No new frame at all is a silent input (no_input, from the loop), not a slow encoder.
        if previous is None or stats.frame > previous.frame:
            self._track_speed(stats.speed, now)
        self._drops = [d for d in self._drops if now - d[0] <= DROPS_WINDOW_S]
        self._drops.append((now, stats.drop_frames))
        recent = self._drops[-1][1] - self._drops[0][1]
        self._set("dropped_frames", recent >= DROPS_ALERT_COUNT, {"recent": recent})

    def _track_speed(self, speed: float | None, now: float) -> None:
        if speed is None:
            return
        slow = speed < SPEED_ALERT_BELOW
        if slow:
            self._slow_since = self._slow_since or now
            self._fast_since = None
        else:
            self._fast_since = self._fast_since or now
            self._slow_since = None
        if slow and now - (self._slow_since or now) >= ALERT_AFTER_S:
            self._set("behind_real_time", True, {"encoder_speed": speed})
        if not slow and now - (self._fast_since or now) >= ALERT_AFTER_S:
            self._set("behind_real_time", False, {"encoder_speed": speed})

    def segment_stored(self, at: datetime) -> None:
        self.last_segment_at = at
        self.set_input_gone(False)

    def set_input_gone(self, gone: bool) -> None:
        self.input_gone = gone
        self._set("no_input", gone, {})

    def _set(self, name: str, on: bool, data: dict[str, object]) -> None:
        if on == (name in self.active):
            return
        (self.active.add if on else self.active.discard)(name)
        self.control.alert(name, on, data)

    def snapshot(self, now: datetime) -> dict[str, object]:
        source, stats, ladder = self.source, self.stats, self.ladder
        age = (now - self.last_segment_at).total_seconds() if self.last_segment_at else None
        return {
            "input_bitrate_kbps": source.bitrate_kbps if source else None,
            "input_fps": round(source.fps, 3) if source else None,
            "input_width": source.width if source else None,
            "input_height": source.height if source else None,
            "input_codec": source.codec if source else None,
            "encoder_speed": stats.speed if stats and not self.input_gone else None,
            "encoder_fps": stats.fps if stats else None,
            "output_bitrate_kbps": stats.bitrate_kbps if stats else None,
            "dropped_frames": stats.drop_frames if stats else 0,
            "last_segment_age_s": round(age, 2) if age is not None else None,
            "last_segment_at": self.last_segment_at.isoformat() if self.last_segment_at else None,
            "preset": ladder.preset if ladder else None,
            "rungs": [rung.name for rung in ladder.rungs] if ladder else [],
            "input": "gone" if self.input_gone else "ok",
            "alerts": sorted(self.active),
        }


# --- the store side -----------------------------------------------------------------------


@dataclass
class Publisher:
    """Writes one stream's objects: segments, then playlists; masters; deletions."""

    store: ObjectStore
    config: LiveConfig
    ladder: LiveLadder
    has_audio: bool
    playlists: dict[str, RungPlaylist]
    codecs: dict[str, str] = field(default_factory=dict)

    def key(self, rung: str, name: str) -> str:
        return f"{stream_prefix(self.config.stream_id)}{rung}/{name}"

    def put_init(self, rung: str, name: str, path: Path) -> None:
        data = path.read_bytes()
        self.codecs[rung] = avc_codec(data)
        _put(self.store, self.key(rung, name), data)

    def add_segment(self, rung: str, segment: LiveSegment, path: Path) -> None:
        """Store the segment, then the playlists naming it, then drop what left the DVR."""
        _put(self.store, self.key(rung, segment.uri), path.read_bytes())
        playlist = self.playlists[rung]
        playlist.append(segment)
        dropped = playlist.trim(self.config.dvr_window_s)
        self.put_playlists(rung)
        kept_inits = playlist.inits()
        for old in dropped:
            self.store.delete(self.key(rung, old.uri))
        for init in {old.init for old in dropped} - kept_inits:
            self.store.delete(self.key(rung, init))

    def put_playlists(self, rung: str) -> None:
        playlist = self.playlists[rung]
        live = render_media(playlist.window(self.config.window_segments))
        _put(self.store, self.key(rung, LIVE_PLAYLIST), live.encode())
        dvr = render_media(playlist)
        _put(self.store, self.key(rung, DVR_PLAYLIST), dvr.encode())

    def ready_for_masters(self) -> bool:
        return all(
            self.playlists[r.name].segments and r.name in self.codecs for r in self.ladder.rungs
        )

    def put_masters(self) -> None:
        variants = [
            MasterVariant(r, self.codecs[r.name], self.has_audio) for r in self.ladder.rungs
        ]
        prefix = stream_prefix(self.config.stream_id)
        for name, media in ((MASTER, LIVE_PLAYLIST), (DVR_PLAYLIST, DVR_PLAYLIST)):
            text = render_master(variants, media)
            _put(self.store, f"{prefix}{name}", text.encode())

    def end_all(self) -> None:
        """EXT-X-ENDLIST on every rung's live and DVR playlist."""
        for rung, playlist in self.playlists.items():
            if playlist.segments:
                playlist.ended = True
                self.put_playlists(rung)

    def last_run(self) -> int:
        inits = [s.init for p in self.playlists.values() for s in p.segments]
        runs = [int(init.removeprefix("init-").removesuffix(".mp4")) for init in inits]
        return max(runs, default=0)

    def next_seq(self) -> int:
        return max((p.next_seq for p in self.playlists.values()), default=0)


def _put(store: ObjectStore, key: str, data: bytes) -> None:
    """A store write, tried again twice on a storage error (a blip must not end a match)."""
    for attempt in range(STORE_TRIES):
        try:
            store.put_bytes(key, data)
            return
        except StorageError:
            if attempt == STORE_TRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def resume_playlists(
    store: ObjectStore, config: LiveConfig, ladder: LiveLadder
) -> dict[str, RungPlaylist]:
    """Each rung's DVR playlist as stored (a takeover or a later task continues it), or an
    empty one."""
    playlists: dict[str, RungPlaylist] = {}
    for rung in ladder.rungs:
        key = f"{stream_prefix(config.stream_id)}{rung.name}/{DVR_PLAYLIST}"
        try:
            playlist = parse_media(store.get_bytes(key).decode())
            playlist.ended = False
        except ObjectNotFound:
            playlist = RungPlaylist(target_duration_for(config.segment_s))
        playlists[rung.name] = playlist
    return _common_end(store, config, playlists)


def _common_end(
    store: ObjectStore, config: LiveConfig, playlists: dict[str, RungPlaylist]
) -> dict[str, RungPlaylist]:
    """A task lost between two rungs' uploads left one rung a segment ahead: drop it, so
    every rung continues from the same sequence number with no gap."""
    ends = [p.segments[-1].seq for p in playlists.values() if p.segments]
    if not ends or min(ends) == max(ends):
        return playlists
    for rung, playlist in playlists.items():
        while playlist.segments and playlist.segments[-1].seq > min(ends):
            extra = playlist.segments.pop()
            store.delete(f"{stream_prefix(config.stream_id)}{rung}/{extra.uri}")
    return playlists


# --- the loop -----------------------------------------------------------------------------


@dataclass
class LiveTask:
    """Runs one stream until it ends or another task takes it over."""

    config: LiveConfig
    store: ObjectStore
    control: LiveControl
    wall: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Callable[[], float] = time.monotonic
    health: Health = field(init=False)
    publisher: Publisher | None = None
    _beat_at: float = float("-inf")
    _went_live: bool = False

    def __post_init__(self) -> None:
        self.health = Health(self.control, self.clock)

    def run(self) -> str:
        """``ended``, ``errored``, ``lost`` (taken over) or ``gone`` (ended elsewhere)."""
        shutil.rmtree(self.config.work_root, ignore_errors=True)
        try:
            return self._sessions()
        except Lost:
            log.warning("live stream taken over by another task")
            return "lost"
        except TranscodeError as exc:
            log.exception("live stream failed")
            self._finish(exc)
            return "errored"
        finally:
            shutil.rmtree(self.config.work_root, ignore_errors=True)

    def _sessions(self) -> str:
        stored_ladder = self.control.status().ladder
        if stored_ladder:
            self._use_ladder(LiveLadder.from_json(stored_ladder), has_audio=True)
        fruitless, ran_for = 0, -1
        while True:
            status = self._await_publisher(ran_for)
            if status is None:
                self._finish(None)
                return "ended"
            if not status.active:
                return "gone"
            if status.sessions != ran_for:
                fruitless, ran_for = 0, status.sessions
            outcome = self._encode(status.sessions)
            fruitless = 0 if outcome != "fruitless" else fruitless + 1
            if fruitless >= MAX_FRUITLESS_RUNS:
                raise TranscodeError(
                    "The live encoder could not read the feed; check the encoder settings.",
                    code="live_input_unusable",
                )

    def _use_ladder(self, ladder: LiveLadder, *, has_audio: bool) -> None:
        self.health.ladder = ladder
        playlists = resume_playlists(self.store, self.config, ladder)
        self.publisher = Publisher(self.store, self.config, ladder, has_audio, playlists)

    def _await_publisher(self, ran_for: int) -> PublisherStatus | None:
        """Wait for a publisher to encode: a new session at once, the same one after a short
        pause (its leaving may be on the way), none past the grace (None)."""
        ended_at = self.clock()
        while True:
            status = self.control.status()
            if not status.active:
                return status
            waited = self.clock() - ended_at
            if status.publishing and (
                status.sessions != ran_for or waited >= SAME_PUBLISHER_RESTART_S
            ):
                return status
            if not status.publishing and self._grace_over(status, waited):
                return None
            if ran_for >= 0:
                self.health.set_input_gone(True)
            self.beat()
            time.sleep(0.25)

    def _grace_over(self, status: PublisherStatus, waited: float) -> bool:
        if status.left_at is not None:
            since_left = (self.wall() - status.left_at).total_seconds()
            return since_left >= self.config.grace_s and waited >= 0.5
        return waited >= self.config.grace_s

    def _encode(self, session: int) -> str:
        """One encoder run for the current publisher: ``stored`` (segments), ``no_input``
        (nothing to read: a silent publisher is waited for, not an error) or ``fruitless``
        (a feed that probes but yields no segment: a few of those in a row end the stream)."""
        self.beat(force=True)
        try:
            source = probe_live(self.config.ffprobe_bin, self.config.input_url)
        except FFmpegFailed as exc:
            log.warning("live input not readable: %s", exc.detail)
            self.health.set_input_gone(True)
            return "no_input"
        self.health.source = source
        if self.publisher is None:
            ladder = choose_ladder(source, self.config.budget_cores)
            self.control.save_ladder(ladder.to_json())
            self._use_ladder(ladder, has_audio=source.has_audio)
        assert self.publisher is not None  # noqa: S101 - set just above
        self.publisher.has_audio = source.has_audio
        run = EncoderRun(self, max(session, self.publisher.last_run() + 1), session)
        self.beat(force=True)
        stored = run.go()
        self.beat(force=True)
        return "stored" if stored else "fruitless"

    def beat(self, *, force: bool = False) -> PublisherStatus | None:
        """Heartbeat (at most every HEARTBEAT_S unless forced, as before a blocking step) and
        the stream row as it is now; raises Lost when another task holds the stream. None
        between heartbeats."""
        now = self.clock()
        if not force and now - self._beat_at < HEARTBEAT_S:
            return None
        self._beat_at = now
        if not self.control.heartbeat(self.health.snapshot(self.wall())):
            log.warning("live heartbeat refused: another task holds the stream")
            raise Lost
        return self.control.status()

    def _finish(self, error: TranscodeError | None) -> None:
        if self.publisher is not None:
            self.publisher.end_all()
        self.control.finished(error)

    def stored(self, at: datetime) -> None:
        """A segment is in the store: health, and the masters once every rung has one."""
        self.health.segment_stored(at)
        assert self.publisher is not None  # noqa: S101 - a run has a publisher
        if not self._went_live and self.publisher.ready_for_masters():
            self.publisher.put_masters()
            self.control.went_live(master_key(self.config.stream_id))
            self._went_live = True


@dataclass
class EncoderRun:
    """One ffmpeg process for one publisher session (or a takeover)."""

    task: LiveTask
    number: int
    session: int  # the publisher session it encodes: a new one (or none) ends the run
    origin: float | None = None  # wall-clock seconds of frame 0's arrival, best estimate
    uploaded: dict[str, int] = field(default_factory=dict)  # rung -> last index stored
    offsets: dict[str, float] = field(default_factory=dict)  # rung -> start of next segment
    pdts: dict[int, datetime] = field(default_factory=dict)  # segment index -> its PDT
    settled: bool = False
    _last_estimate: float | None = None
    stored_any: bool = False
    base_seq: int = 0  # the global sequence number of this run's segment 0
    first: bool = True  # the stream's very first run: no discontinuity before it

    @property
    def init_name(self) -> str:
        return f"init-{self.number}.mp4"

    def go(self) -> bool:
        task = self.task
        publisher = task.publisher
        assert publisher is not None  # noqa: S101 - LiveTask._encode sets it
        work_dir = task.config.work_root / str(self.number)
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        self.base_seq = publisher.next_seq()
        self.first = not any(p.segments for p in publisher.playlists.values())
        job = EncoderJob(
            task.config.input_url, publisher.ladder, work_dir, task.config.segment_s,
            publisher.has_audio,
        )  # fmt: skip
        process = LongProcess(live_command(task.config.ffmpeg_bin, job))
        log.info("live encoder run %s started at seq %s", self.number, self.base_seq)
        try:
            self._pump(process, work_dir)
        except Lost:
            process.stop(grace_s=0)
            raise
        finally:
            code = process.stop(grace_s=2.0)
            tail = process.stderr_tail()[-800:]
            log.info("live encoder run %s ended (exit %s): %s", self.number, code, tail)
        try:
            self._collect(work_dir, final=True)  # what ffmpeg finished while stopping
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        return self.stored_any

    def _pump(self, process: LongProcess, work_dir: Path) -> None:
        """Upload and heartbeat until ffmpeg exits or makes no segment for too long."""
        last_new = self.task.clock()
        while process.poll() is None:
            self._progress(process.lines())
            if self._collect(work_dir):
                last_new = self.task.clock()
            status = self.task.beat()
            if status is not None and not self._same_publisher(status):
                log.info("live publisher left or was replaced: run %s stops", self.number)
                return
            # The first segment also waits for the input to connect and the encoder to start.
            limit = self.task.config.stall_s + (0 if self.stored_any else 10)
            if self.task.clock() - last_new > limit:
                log.warning("live encoder made no segment for %.0f s: restarting", limit)
                return
            time.sleep(TICK_S)
        self._progress(process.lines())

    def _pdt(self, local: LocalSegment, start: float) -> datetime:
        """The segment's program date time, the same on every rung (the first rung to store
        a segment fixes it: the origin estimate may improve before the next rung's turn)."""
        if local.index not in self.pdts:
            origin = (
                self.origin if self.origin is not None else time.time() - start - local.duration
            )
            self.pdts[local.index] = datetime.fromtimestamp(origin + start, UTC)
        return self.pdts[local.index]

    def _same_publisher(self, status: PublisherStatus) -> bool:
        return status.active and status.publishing and status.sessions == self.session

    def _progress(self, lines: list[str]) -> None:
        now = time.time()
        for stats in parse_progress(lines):
            if stats.frame > 0 and stats.out_time_s > 0 and not self.settled:
                self._estimate(now - stats.out_time_s, stats.out_time_s)
            self.task.health.observe(stats)

    def _estimate(self, estimate: float, out_time_s: float) -> None:
        """Frame 0's arrival: ``now - out_time`` runs late while ffmpeg starts up (it buffers
        the input while probing it, then catches up in a burst); once two estimates in a row
        agree, it is as good as it gets, and it is fixed for the run, so the run's program
        date times advance exactly with its media time."""
        previous, self._last_estimate = self._last_estimate, estimate
        self.origin = estimate if self.origin is None else min(self.origin, estimate)
        steady = previous is not None and abs(estimate - previous) < SETTLED_WITHIN_S
        self.settled = steady or out_time_s >= SETTLE_BY_OUT_TIME_S

    def _collect(self, work_dir: Path, *, final: bool = False) -> bool:
        """Store every segment ffmpeg completed since the last look; whether there was one.
        Until the origin has settled (the first second or so of a run) segments wait."""
        publisher = self.task.publisher
        assert publisher is not None  # noqa: S101 - set by LiveTask._encode
        if not (self.settled or final):
            return False
        new = False
        for rung in publisher.ladder.rungs:
            for local in completed_segments(work_dir / rung.name):
                if local.index > self.uploaded.get(rung.name, -1) and local.path.exists():
                    self._store(rung.name, local)
                    new = True
        return new

    def _store(self, rung: str, local: LocalSegment) -> None:
        publisher = self.task.publisher
        assert publisher is not None  # noqa: S101 - set by LiveTask._encode
        if rung not in self.uploaded:
            publisher.put_init(rung, self.init_name, local.init)
        start = self.offsets.get(rung, 0.0)
        segment = LiveSegment(
            seq=self.base_seq + local.index,
            duration=local.duration,
            pdt=self._pdt(local, start),
            init=self.init_name,
            discontinuity=not self.first and rung not in self.uploaded,
        )
        publisher.add_segment(rung, segment, local.path)
        local.path.unlink(missing_ok=True)
        self.uploaded[rung] = local.index
        self.offsets[rung] = start + local.duration
        if all(self.uploaded.get(r.name, -1) >= local.index for r in publisher.ladder.rungs):
            self.pdts.pop(local.index, None)
        self.stored_any = True
        self.task.stored(self.task.wall())
