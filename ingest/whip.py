"""WHIP ingest (RFC 9725): a browser or OBS publishes over WebRTC, and the decoded media is
republished into the RTMP edge, so it enters the same live pipeline as an RTMP publisher
(the edge's ``on_publish`` checks the key again and marks the stream ``via=whip``).

One :class:`WhipSession` per publisher: an aiortc peer connection whose video and audio
tracks are always consumed (extra tracks go to a MediaBlackhole), and an ffmpeg republisher
fed on a clock: ``whip_fps`` frames a second, each the latest decoded picture (so a slow
encoder drops pictures instead of queueing them), and audio following the video frame
count (gaps filled with silence, excess dropped). Every buffer is bounded. A session ends on
DELETE, when ICE fails or closes, when the publisher sends nothing for
``whip_idle_timeout_s``, or when the republisher exits (e.g. the edge refused the key)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from core.auth import hash_secret
from core.cancellation import raise_if_cancelling
from core.errors import (
    Conflict,
    CourtsideError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from core.models import LiveStream
from core.settings import Settings
from core.webrtc import CONNECT_TIMEOUT_S, new_peer, wait_connected
from core.webrtc_sessions import REFRESH_EVERY_S, SessionDirectory, SessionRecord
from ingest.live_streams import STARTABLE, stream_for_key
from transcode.republish import (
    AUDIO_BYTES_PER_SAMPLE,
    AUDIO_RATE,
    RawVideo,
    Republisher,
)

log = logging.getLogger(__name__)

KIND = "whip"
MAX_OFFER_BYTES = 64 * 1024
MAX_WIDTH, MAX_HEIGHT = 1920, 1080
# Audio waiting for the video clock: about half a second of 20 ms Opus frames.
AUDIO_BACKLOG_FRAMES = 25
# Silence is written once the audio is this far behind the video (lost packets, no track).
AUDIO_SLACK_SAMPLES = AUDIO_RATE * 60 // 1000
# A late clock tick writes at most this many frames to catch up; older slots are dropped.
MAX_CATCH_UP_FRAMES = 3


class CapacityReached(CourtsideError):
    """HTTP 503: this server holds as many WebRTC sessions as it is allowed."""

    code = "capacity_reached"


@dataclass(frozen=True)
class WhipConfig:
    ffmpeg_bin: str
    rtmp_url: str
    fps: int
    idle_timeout_s: float
    max_sessions: int
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings) -> WhipConfig:
        return cls(
            ffmpeg_bin=settings.ffmpeg_bin,
            rtmp_url=settings.rtmp_pull_url.rstrip("/"),
            fps=settings.whip_fps,
            idle_timeout_s=settings.whip_idle_timeout_s,
            max_sessions=settings.whip_max_sessions,
        )


def authorize_publisher(session: Session, stream_id: str, key: str) -> LiveStream:
    """The stream ``key`` may publish to, which must be ``stream_id`` and able to start."""
    stream = stream_for_key(session, key)
    if stream is None:
        raise Unauthenticated("unknown or revoked stream key")
    if stream.id != stream_id:
        raise Forbidden("this stream key belongs to another stream")
    if stream.state not in STARTABLE:
        raise Conflict(f"this stream is {stream.state}: it cannot start again")
    if stream.publishing:
        raise Conflict("this stream already has a publisher")
    return stream


def key_owner(key: str) -> str:
    return hash_secret(key)


def output_size(width: int, height: int) -> tuple[int, int]:
    """The republished picture size: the publisher's first frame, scaled down to fit
    1920x1080 when larger, even in both dimensions (yuv420p)."""
    scale = min(1.0, MAX_WIDTH / max(width, 1), MAX_HEIGHT / max(height, 1))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def pack_yuv420p(frame: VideoFrame, width: int, height: int) -> bytes:
    """The frame as tightly packed yuv420p bytes at ``width``x``height``."""
    if (frame.width, frame.height, frame.format.name) != (width, height, "yuv420p"):
        frame = frame.reformat(width=width, height=height, format="yuv420p")
    out = bytearray()
    for plane in frame.planes:
        view, row, stride = memoryview(plane), plane.width, plane.line_size
        if stride == row:
            out += view[: row * plane.height]
            continue
        for y in range(plane.height):
            out += view[y * stride : y * stride + row]
    return bytes(out)


class AudioPacker:
    """Decoded audio → s16le stereo 48 kHz bytes, whatever the decoder produced."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE)

    def pack(self, frame: AudioFrame) -> list[bytes]:
        return [
            bytes(out.planes[0])[: out.samples * AUDIO_BYTES_PER_SAMPLE]
            for out in self._resampler.resample(frame)
        ]


class WhipSession:
    """One publisher: its peer connection, its track readers and its republisher."""

    def __init__(
        self,
        stream_id: str,
        key: str,
        config: WhipConfig,
        on_closed: Callable[[WhipSession], Awaitable[None]],
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.stream_id = stream_id
        self.record = SessionRecord(KIND, stream_id, key_owner(key))
        self.reason = ""
        self.frames_written = 0
        self.frames_dropped = 0
        self.closed = asyncio.Event()
        self._key = key
        self._config = config
        self._on_closed = on_closed
        self._pc: RTCPeerConnection = new_peer()
        self._blackhole = MediaBlackhole()
        self._tasks: set[asyncio.Task[None]] = set()
        self._video: VideoFrame | None = None
        self._video_kind_taken = False
        self._audio_kind_taken = False
        self._audio: deque[bytes] = deque(maxlen=AUDIO_BACKLOG_FRAMES)
        self._audio_samples = 0
        self._last_media_at = time.monotonic()
        self._republisher: Republisher | None = None
        self._closing = False
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_state)

    @property
    def republisher_pid(self) -> int | None:
        return self._republisher.pid if self._republisher else None

    async def negotiate(self, offer_sdp: str) -> str:
        """The SDP answer for the publisher's offer (all candidates gathered: no trickle)."""
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except (ValueError, KeyError, IndexError) as exc:
            raise InvalidInput(f"the SDP offer could not be used: {exc}") from None
        if not any(t.kind == "video" for t in self._pc.getTransceivers()):
            raise InvalidInput("the SDP offer must send a video track")
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        await self._blackhole.start()
        self._spawn(self._watch_connection())
        return self._pc.localDescription.sdp

    async def close(self, reason: str) -> None:
        """End everything this session holds; safe to call more than once."""
        if self._closing:
            return
        self._closing, self.reason = True, reason
        log.info("whip %s (stream %s) closed: %s", self.id, self.stream_id, reason)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await self._pc.close()
        await self._blackhole.stop()
        if self._republisher is not None:
            await self._republisher.stop()
        self.closed.set()
        await self._on_closed(self)

    # --- tracks -----------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video" and not self._video_kind_taken:
            self._video_kind_taken = True
            self._spawn(self._read_video(track))
        elif track.kind == "audio" and not self._audio_kind_taken:
            self._audio_kind_taken = True
            self._spawn(self._read_audio(track))
        else:
            # Every received track must be consumed, or aiortc buffers it without bound.
            self._blackhole.addTrack(track)

    async def _read_video(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame):
                    self._video, self._last_media_at = frame, time.monotonic()
                    if self._republisher is None and not self._closing:
                        await self._start_republisher(frame)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        packer = AudioPacker()
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, AudioFrame) and self._republisher is not None:
                    self._audio.extend(packer.pack(frame))

    # --- republishing -----------------------------------------------------------------------

    async def _start_republisher(self, first: VideoFrame) -> None:
        width, height = output_size(first.width, first.height)
        video = RawVideo(width, height, self._config.fps)
        target = f"{self._config.rtmp_url}/{self._key}?via=whip"
        self._republisher = await Republisher.start(self._config.ffmpeg_bin, video, target)
        self._spawn(self._pump(self._republisher))

    async def _pump(self, out: Republisher) -> None:
        """Write frames on the clock until the session ends."""
        loop = asyncio.get_running_loop()
        fps, start, slots = out.video.fps, loop.time(), 0
        packed: tuple[VideoFrame | None, bytes] = (None, b"")
        while True:
            if problem := self._problem(out):
                await self.close(problem)
                return
            due = int((loop.time() - start) * fps) + 1 - slots
            if due > MAX_CATCH_UP_FRAMES:
                self.frames_dropped += due - MAX_CATCH_UP_FRAMES
                slots, due = slots + due - MAX_CATCH_UP_FRAMES, MAX_CATCH_UP_FRAMES
            for _ in range(max(due, 0)):
                slots += 1
                packed = await self._packed(packed, out.video)
                if out.write_video(packed[1]):
                    self.frames_written += 1
                else:
                    self.frames_dropped += 1
            self._write_audio(out)
            await asyncio.sleep(max(0.0, start + slots / fps - loop.time()))

    async def _packed(
        self, last: tuple[VideoFrame | None, bytes], video: RawVideo
    ) -> tuple[VideoFrame | None, bytes]:
        """The current picture as raw bytes (converted off the event loop, once per frame)."""
        frame = self._video
        if frame is None or frame is last[0]:
            return last
        return frame, await asyncio.to_thread(pack_yuv420p, frame, video.width, video.height)

    def _write_audio(self, out: Republisher) -> None:
        """Audio up to where the video stands (its frame count is the timeline)."""
        target = self.frames_written * AUDIO_RATE // out.video.fps
        while self._audio and self._audio_samples < target:
            chunk = self._audio.popleft()
            if out.write_audio(chunk):
                self._audio_samples += len(chunk) // AUDIO_BYTES_PER_SAMPLE
        gap = target - self._audio_samples
        if gap > AUDIO_SLACK_SAMPLES and out.write_audio(bytes(gap * AUDIO_BYTES_PER_SAMPLE)):
            self._audio_samples += gap

    def _problem(self, out: Republisher) -> str:
        if out.returncode is not None:
            log.warning("whip %s: republisher exited: %s", self.id, out.stderr_tail()[-500:])
            return "republisher_exited"
        if time.monotonic() - self._last_media_at > self._config.idle_timeout_s:
            return "publisher_silent"
        return ""

    # --- connection -------------------------------------------------------------------------

    async def _watch_connection(self) -> None:
        if not await wait_connected(self._pc, self._config.connect_timeout_s):
            await self.close("ice_failed")
            return
        # Connected: from now on silence is measured from here, not from the answer.
        self._last_media_at = time.monotonic()
        while not self._closing:
            await asyncio.sleep(1.0)
            if self._republisher is None and self._problem_before_media():
                await self.close("publisher_silent")
                return

    def _problem_before_media(self) -> bool:
        return time.monotonic() - self._last_media_at > self._config.idle_timeout_s

    def _on_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed") and not self._closing:
            self._spawn(self.close(f"ice_{self._pc.connectionState}"))

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class WhipSessions:
    """The WHIP sessions this process holds, and the Redis records that let any process end
    them."""

    def __init__(self, config: WhipConfig, directory: SessionDirectory | None) -> None:
        self._config = config
        self.directory = directory
        self._sessions: dict[str, WhipSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> WhipSession | None:
        return self._sessions.get(session_id)

    async def open(self, stream_id: str, key: str, offer_sdp: str) -> tuple[WhipSession, str]:
        """A new session and its SDP answer; nothing is left behind if negotiation fails."""
        if len(self._sessions) >= self._config.max_sessions:
            raise CapacityReached(
                f"this server holds its maximum of {self._config.max_sessions} WHIP "
                "sessions; try again later"
            )
        session = WhipSession(stream_id, key, self._config, self._forget)
        self._sessions[session.id] = session
        try:
            answer = await session.negotiate(offer_sdp)
        except BaseException:
            await session.close("negotiation_failed")
            raise
        await self._record(session)
        return session, answer

    async def end(self, session_id: str, stream_id: str, key: str) -> None:
        """DELETE: the publisher (same key) ends its session, whichever process holds it."""
        record = await self._lookup(session_id)
        owner = key_owner(key)
        if (
            record is None
            or record.stream_id != stream_id
            or not hmac.compare_digest(record.owner, owner)
        ):
            raise NotFound("no such WHIP session")
        if not await self.close(session_id, "deleted") and self.directory is not None:
            await self.directory.signal_close(session_id)

    async def close(self, session_id: str, reason: str) -> bool:
        """Close a session held here; False when this process does not hold it."""
        session = self._sessions.get(session_id)
        if session is None:
            return False
        await session.close(reason)
        return True

    async def close_all(self, reason: str) -> None:
        for session in list(self._sessions.values()):
            await session.close(reason)

    async def refresh_records(self) -> None:
        """Keep this process's records alive (until cancelled)."""
        while True:
            await asyncio.sleep(REFRESH_EVERY_S)
            for session in list(self._sessions.values()):
                await self._record(session)
            raise_if_cancelling()  # a Redis error may have stood in for the cancellation

    async def _lookup(self, session_id: str) -> SessionRecord | None:
        local = self._sessions.get(session_id)
        if local is not None or self.directory is None:
            return local.record if local else None
        try:
            return await self.directory.get(session_id)
        except RedisError as exc:
            log.warning("whip: session directory unavailable: %s", exc)
            return None

    async def _record(self, session: WhipSession) -> None:
        if self.directory is None:
            return
        try:
            await self.directory.add(session.id, session.record)
        except RedisError as exc:
            log.warning("whip: could not record session %s: %s", session.id, exc)

    async def _forget(self, session: WhipSession) -> None:
        self._sessions.pop(session.id, None)
        if self.directory is None:
            return
        try:
            await self.directory.remove(session.id, session.record)
        except RedisError as exc:
            log.warning("whip: could not remove session %s: %s", session.id, exc)
