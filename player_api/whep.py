"""WHEP low-latency preview for partners, moderators and rights managers.

aiortc encodes once per viewer, so this is for a few people per stream
(``whep_max_viewers``, counted across API processes); fans watch HLS. Each process pulls a
stream's feed from the RTMP edge once (an aiortc ``MediaPlayer`` on
``<rtmp_pull_url>/<stream id>``) and shares it between its viewers with
``MediaRelay(buffered=False)``: a viewer whose encoder lags skips pictures, nothing queues.
The feed is closed when its last viewer leaves; a viewer is closed on DELETE, when ICE fails
or closes, or when the feed ends."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRelay
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from core.auth import Principal, require_league, require_role
from core.cancellation import raise_if_cancelling
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.models import LiveState, LiveStream, Role
from core.settings import Settings
from core.webrtc import CONNECT_TIMEOUT_S, new_peer, wait_connected
from core.webrtc_sessions import REFRESH_EVERY_S, SessionDirectory, SessionRecord
from ingest import live_streams
from ingest.whip import CapacityReached
from player_api.access import RightsContext, decide, require
from rights.model import Viewer

log = logging.getLogger(__name__)

KIND = "whep"
VIEW_ROLES = (Role.PARTNER, Role.MODERATOR, Role.RIGHTS_MANAGER)
# Roles that act for their own leagues only (moderators and admins see every stream).
LEAGUE_SCOPED = (Role.PARTNER, Role.RIGHTS_MANAGER)
ON_AIR = (LiveState.CONNECTING, LiveState.LIVE)
FEED_OPEN_TIMEOUT_S = 10
# Demuxer options for the edge's feed: only RTMP, and start after little probing.
FEED_OPTIONS = {
    "protocol_whitelist": "rtmp,tcp",
    "fflags": "nobuffer",
    "probesize": "200000",
    "analyzeduration": "1000000",
}


@dataclass(frozen=True)
class WhepConfig:
    feed_url: Callable[[str], str]  # a stream id → where its feed is pulled from the edge
    max_viewers: int
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings) -> WhepConfig:
        return cls(
            feed_url=partial(live_streams.pull_url, settings),
            max_viewers=settings.whep_max_viewers,
        )


def authorize_viewer(
    session: Session,
    rights: RightsContext,
    principal: Principal,
    viewer: Viewer,
    stream_id: str,
    now: datetime,
) -> LiveStream:
    """The stream, if ``principal`` may preview it now from where ``viewer`` is: a role that
    may, the stream's league for league-scoped roles, a feed on air, and the same rights
    decision as playback (451 with its reason otherwise)."""
    require_role(principal, *VIEW_ROLES)
    stream = session.get(LiveStream, stream_id)
    if stream is None:
        raise NotFound("no such live stream")
    if principal.role in LEAGUE_SCOPED:
        try:
            require_league(principal, stream.league_id)
        except Forbidden:
            raise NotFound("no such live stream") from None
    if not stream.publishing or stream.state not in ON_AIR:
        raise Conflict(f"this stream is not on air (it is {stream.state})")
    item = rights.cache.rights_for(session, [stream.asset])[stream.id]
    require(decide(item, viewer, now))
    return stream


class LiveFeed:
    """One stream's feed from the edge, decoded once, shared by this process's viewers."""

    def __init__(self, player: MediaPlayer) -> None:
        self._player = player
        self._relay = MediaRelay()
        self.viewers: set[str] = set()

    @classmethod
    async def open(cls, url: str) -> LiveFeed:
        # av.open connects and probes: off the event loop.
        player = await asyncio.to_thread(
            MediaPlayer, url, format="flv", options=FEED_OPTIONS, timeout=FEED_OPEN_TIMEOUT_S
        )
        if player.video is None:
            await asyncio.to_thread(_stop_player, player)
            raise Conflict("the stream's feed has no video yet; try again in a moment")
        return cls(player)

    def subscribe(self) -> list[MediaStreamTrack]:
        sources = [self._player.video, self._player.audio]
        return [self._relay.subscribe(t, buffered=False) for t in sources if t is not None]

    async def close(self) -> None:
        # Stopping the player joins its decoding thread, which may sit in a network read.
        await asyncio.to_thread(_stop_player, self._player)


def _stop_player(player: MediaPlayer) -> None:
    for track in (player.video, player.audio):
        if track is not None:
            track.stop()


class WhepViewer:
    def __init__(
        self,
        stream_id: str,
        owner: str,
        feed: LiveFeed,
        connect_timeout_s: float,
        on_closed: Callable[[WhepViewer], Awaitable[None]],
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.stream_id = stream_id
        self.record = SessionRecord(KIND, stream_id, owner)
        self.feed = feed
        self.reason = ""
        self.closed = asyncio.Event()
        self._pc: RTCPeerConnection = new_peer()
        self._tracks: list[MediaStreamTrack] = []
        self._connect_timeout_s = connect_timeout_s
        self._on_closed = on_closed
        self._watch: asyncio.Task[None] | None = None
        self._closing = False

    async def negotiate(self, offer_sdp: str) -> str:
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except (ValueError, KeyError, IndexError) as exc:
            raise InvalidInput(f"the SDP offer could not be used: {exc}") from None
        kinds = {t.kind for t in self._pc.getTransceivers()}
        if "video" not in kinds:
            raise InvalidInput("the SDP offer must receive video")
        self._tracks = [t for t in self.feed.subscribe() if t.kind in kinds]
        for track in self._tracks:
            self._pc.addTrack(track)
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._watch = asyncio.ensure_future(self._watch_connection())
        return self._pc.localDescription.sdp

    async def close(self, reason: str) -> None:
        if self._closing:
            return
        self._closing, self.reason = True, reason
        log.info("whep %s (stream %s) closed: %s", self.id, self.stream_id, reason)
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        for track in self._tracks:
            track.stop()
        await self._pc.close()
        self.closed.set()
        await self._on_closed(self)

    async def _watch_connection(self) -> None:
        if not await wait_connected(self._pc, self._connect_timeout_s):
            await self.close("ice_failed")
            return
        while self._pc.connectionState == "connected":
            if any(track.readyState == "ended" for track in self._tracks):
                await self.close("stream_ended")
                return
            await asyncio.sleep(1.0)
        await self.close(f"ice_{self._pc.connectionState}")


class WhepViewers:
    """This process's viewers and feeds, plus the Redis records that cap viewers per stream
    across processes and let any process end a viewer."""

    def __init__(self, config: WhepConfig, directory: SessionDirectory | None) -> None:
        self._config = config
        self.directory = directory
        self._viewers: dict[str, WhepViewer] = {}
        self._feeds: dict[str, LiveFeed] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._viewers)

    def feeds(self) -> int:
        return len(self._feeds)

    def get(self, viewer_id: str) -> WhepViewer | None:
        return self._viewers.get(viewer_id)

    async def open(self, stream_id: str, owner: str, offer_sdp: str) -> tuple[WhepViewer, str]:
        lock = self._locks.setdefault(stream_id, asyncio.Lock())
        async with lock:
            await self._check_capacity(stream_id)
            feed = self._feeds.get(stream_id) or await self._open_feed(stream_id)
            viewer = WhepViewer(
                stream_id, owner, feed, self._config.connect_timeout_s, self._forget
            )
            feed.viewers.add(viewer.id)
            self._viewers[viewer.id] = viewer
        try:
            answer = await viewer.negotiate(offer_sdp)
        except BaseException:
            await viewer.close("negotiation_failed")
            raise
        await self._record(viewer)
        return viewer, answer

    async def end(self, viewer_id: str, stream_id: str, owner: str) -> None:
        record = await self._lookup(viewer_id)
        if (
            record is None
            or record.stream_id != stream_id
            or not hmac.compare_digest(record.owner, owner)
        ):
            raise NotFound("no such WHEP session")
        if not await self.close(viewer_id, "deleted") and self.directory is not None:
            await self.directory.signal_close(viewer_id)

    async def close(self, viewer_id: str, reason: str) -> bool:
        viewer = self._viewers.get(viewer_id)
        if viewer is None:
            return False
        await viewer.close(reason)
        return True

    async def close_all(self, reason: str) -> None:
        for viewer in list(self._viewers.values()):
            await viewer.close(reason)

    async def refresh_records(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_EVERY_S)
            for viewer in list(self._viewers.values()):
                await self._record(viewer)
            raise_if_cancelling()  # a Redis error may have stood in for the cancellation

    async def _check_capacity(self, stream_id: str) -> None:
        count = sum(1 for v in self._viewers.values() if v.stream_id == stream_id)
        if self.directory is not None:
            with contextlib.suppress(RedisError):
                count = max(count, await self.directory.count(KIND, stream_id))
        if count >= self._config.max_viewers:
            raise CapacityReached(
                f"this stream already has its maximum of {self._config.max_viewers} preview "
                "viewers; watch it over HLS, or try again when one leaves"
            )

    async def _open_feed(self, stream_id: str) -> LiveFeed:
        try:
            feed = await LiveFeed.open(self._config.feed_url(stream_id))
        except (OSError, av.FFmpegError) as exc:
            log.warning("whep: feed of %s could not be opened: %s", stream_id, exc)
            raise Conflict(
                "the stream's feed is not reachable yet; try again in a moment"
            ) from None
        self._feeds[stream_id] = feed
        return feed

    async def _lookup(self, viewer_id: str) -> SessionRecord | None:
        local = self._viewers.get(viewer_id)
        if local is not None or self.directory is None:
            return local.record if local else None
        try:
            return await self.directory.get(viewer_id)
        except RedisError as exc:
            log.warning("whep: session directory unavailable: %s", exc)
            return None

    async def _record(self, viewer: WhepViewer) -> None:
        if self.directory is None:
            return
        try:
            await self.directory.add(viewer.id, viewer.record)
        except RedisError as exc:
            log.warning("whep: could not record viewer %s: %s", viewer.id, exc)

    async def _forget(self, viewer: WhepViewer) -> None:
        self._viewers.pop(viewer.id, None)
        feed = viewer.feed
        feed.viewers.discard(viewer.id)
        if not feed.viewers and self._feeds.get(viewer.stream_id) is feed:
            del self._feeds[viewer.stream_id]
            await feed.close()
        if self.directory is not None:
            with contextlib.suppress(RedisError):
                await self.directory.remove(viewer.id, viewer.record)
