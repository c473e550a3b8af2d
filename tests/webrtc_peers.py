"""aiortc peers for the WHIP and WHEP tests: a synthetic publisher (moving pattern + tone)
and the SDP offers they send. Tests restrict ICE to 127.0.0.1 first (core.webrtc)."""

from __future__ import annotations

import asyncio
import fractions
import math

from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from core.webrtc import new_peer, restrict_host_addresses

LOOPBACK = ["127.0.0.1"]
PATTERN_SIZE = (320, 240)


class PatternTrack(VideoStreamTrack):
    """320x240 at 30 fps: a bright bar sweeping across a dark picture."""

    def __init__(self) -> None:
        super().__init__()
        self._index = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        width, height = PATTERN_SIZE
        bar = (self._index * 8) % width
        row = bytes(200 if bar <= x < bar + 32 else 40 for x in range(width))
        frame = VideoFrame(width, height, "yuv420p")
        luma, u_plane, v_plane = frame.planes
        luma.update(_rows(row, luma.line_size, height))
        for plane in (u_plane, v_plane):
            plane.update(bytes([128]) * (plane.line_size * plane.height))
        frame.pts, frame.time_base = pts, time_base
        self._index += 1
        return frame


def _rows(row: bytes, stride: int, height: int) -> bytes:
    return (row + bytes(stride - len(row))) * height


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone, 20 ms frames of 48 kHz stereo s16."""

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.02)
        count = 960
        values = bytearray()
        for i in range(count):
            sample = int(8000 * math.sin(2 * math.pi * 440 * (self._samples + i) / 48000))
            values += sample.to_bytes(2, "little", signed=True) * 2
        frame = AudioFrame(format="s16", layout="stereo", samples=count)
        frame.planes[0].update(bytes(values))
        frame.sample_rate = 48000
        frame.pts, frame.time_base = self._samples, fractions.Fraction(1, 48000)
        self._samples += count
        return frame


async def publisher_offer(video: bool = True, audio: bool = True) -> tuple[RTCPeerConnection, str]:
    """A publishing peer and its offer (all candidates gathered, on loopback)."""
    restrict_host_addresses(LOOPBACK)
    pc = new_peer()
    if video:
        pc.addTrack(PatternTrack())
    if audio:
        pc.addTrack(ToneTrack())
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def viewer_offer() -> tuple[RTCPeerConnection, str]:
    """A receive-only peer (video and audio) and its offer."""
    restrict_host_addresses(LOOPBACK)
    pc = new_peer()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def offer_sdp(video: bool = True, audio: bool = True) -> str:
    """Just the text of a publisher's offer (its peer is closed at once)."""

    async def make() -> str:
        pc, sdp = await publisher_offer(video, audio)
        await pc.close()
        return sdp

    return asyncio.run(make())


def viewer_offer_sdp() -> str:
    async def make() -> str:
        pc, sdp = await viewer_offer()
        await pc.close()
        return sdp

    return asyncio.run(make())
