"""A WHIP session's media path and its endings, without the API or the edge: an aiortc
publisher in the same event loop, and the republisher writing FLV to a file (the edge's
place) so what it produced can be probed.

Endings: the publisher goes silent (idle timeout), it never connects (ICE timeout), and
the republisher exits (what an edge refusing the key looks like)."""

from __future__ import annotations

import asyncio
import json
import subprocess  # noqa: TID251 - ffprobe of the republished file
from pathlib import Path

import pytest
from aiortc import RTCSessionDescription

from core.webrtc import wait_connected
from ingest.whip import WhipConfig, WhipSession, WhipSessions
from tests.webrtc_peers import PatternTrack, publisher_offer

pytestmark = pytest.mark.timeout(60)
KEY = "cs_live_test-key"


class PausablePattern(PatternTrack):
    """The pattern until ``pause`` is set; then nothing at all (the connection stays up)."""

    def __init__(self) -> None:
        super().__init__()
        self.pause = asyncio.Event()

    async def recv(self):  # type: ignore[no-untyped-def]
        if self.pause.is_set():
            await asyncio.Event().wait()
        return await super().recv()


def config(out_dir: Path, **overrides: float) -> WhipConfig:
    values: dict[str, float] = {"idle_timeout_s": 2.0, "connect_timeout_s": 5.0, **overrides}
    return WhipConfig(
        ffmpeg_bin="ffmpeg",
        # The republisher pushes to "<rtmp_url>/<key>?via=whip": here a file in out_dir.
        rtmp_url=str(out_dir),
        fps=30,
        idle_timeout_s=values["idle_timeout_s"],
        max_sessions=2,
        connect_timeout_s=values["connect_timeout_s"],
    )


def probe(path: Path) -> dict[str, object]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
         "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def wait_closed(session: WhipSession, timeout_s: float) -> str:
    await asyncio.wait_for(session.closed.wait(), timeout_s)
    return session.reason


def test_media_is_republished_and_a_silent_publisher_is_dropped(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, int]:
        sessions = WhipSessions(config(tmp_path), None)
        pc, _offer = await publisher_offer(video=False)
        video = PausablePattern()
        pc.addTrack(video)
        await pc.setLocalDescription(await pc.createOffer())
        session, answer = await sessions.open("stream-1", KEY, pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        assert await wait_connected(pc)
        await asyncio.sleep(3.0)
        video.pause.set()
        reason = await wait_closed(session, 10)
        frames = session.frames_written
        await pc.close()
        assert len(sessions) == 0
        return reason, frames

    reason, frames = asyncio.run(scenario())
    assert reason == "publisher_silent"
    assert frames >= 60, f"only {frames} frames reached the republisher in about 4 s"
    found = probe(tmp_path / f"{KEY}?via=whip")
    streams = found["streams"]
    assert isinstance(streams, list)
    assert {s["codec_name"] for s in streams} == {"h264", "aac"}
    assert {(s.get("width"), s.get("height")) for s in streams} >= {(320, 240)}
    fmt = found["format"]
    assert isinstance(fmt, dict)
    assert float(fmt["duration"]) >= 2.0


def test_a_publisher_that_never_connects_is_dropped(tmp_path: Path) -> None:
    async def scenario() -> str:
        sessions = WhipSessions(config(tmp_path, connect_timeout_s=1.0), None)
        pc, offer = await publisher_offer()
        await pc.close()  # the answer will never be used: ICE cannot complete
        session, _answer = await sessions.open("stream-1", KEY, offer)
        reason = await wait_closed(session, 10)
        assert len(sessions) == 0
        return reason

    assert asyncio.run(scenario()) == "ice_failed"


def test_a_republisher_that_exits_ends_the_session(tmp_path: Path) -> None:
    """ffmpeg cannot write its output (as when the edge refuses the key): the session ends."""

    async def scenario() -> str:
        sessions = WhipSessions(config(tmp_path / "missing" / "dir"), None)
        pc, offer = await publisher_offer()
        session, answer = await sessions.open("stream-1", KEY, offer)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        reason = await wait_closed(session, 20)
        await pc.close()
        return reason

    assert asyncio.run(scenario()) == "republisher_exited"
