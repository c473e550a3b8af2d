"""WHEP frame latency on loopback: publisher clock → RTMP edge → WHEP viewer.

Method: a publisher (ffmpeg fed raw 320x240 frames at 30 fps from this process, x264
ultrafast/zerolatency, pushed over RTMP to the edge like OBS would) stamps each frame with
the wall-clock time it is handed to ffmpeg, as 32 black/white 20x20 blocks (milliseconds
modulo 2^32, written twice; a frame whose two copies disagree is not counted). An aiortc
viewer in this process receives the stream over WHEP, reads the stamp off every decoded
frame and subtracts it from the time the frame came out of its decoder. Both clocks are
this machine's, so the difference is the whole path: encode, RTMP, the API's feed
decoder, aiortc's per-viewer encoder, RTP on loopback, jitter buffer and decode.

``measure_whep_latency`` is what ``bench live`` calls; ``whep_latency_samples`` gives every
sample for percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess  # noqa: TID251 - the benchmark runs a real ffmpeg publisher
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx2
from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.frame import VideoFrame

from core.webrtc import new_peer, restrict_host_addresses, wait_connected

BLOCK = 20
COLUMNS = 16
BITS = 32
# Two copies of the 32 bits, each two rows of 16 blocks: the top 80 rows of the picture.
COPIES = 2
DARK, LIGHT = 16, 235
WIDTH, HEIGHT, FPS = 320, 240, 30


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def clock_frame(ms: int, index: int, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A packed yuv420p picture: a moving grey ramp with ``ms`` stamped in blocks on top."""
    luma = bytearray(((x + 4 * index) % 200 + 28) for x in range(width)) * height
    stamp = ms % (1 << BITS)
    for copy in range(COPIES):
        for bit in range(BITS):
            value = LIGHT if stamp >> (BITS - 1 - bit) & 1 else DARK
            top = (copy * 2 + bit // COLUMNS) * BLOCK
            left = (bit % COLUMNS) * BLOCK
            for y in range(top, top + BLOCK):
                luma[y * width + left : y * width + left + BLOCK] = bytes([value]) * BLOCK
    chroma = bytes([128]) * (width // 2 * height // 2)
    return bytes(luma) + chroma + chroma


def read_clock(frame: VideoFrame) -> int | None:
    """The stamp of a received frame (scaled back to 320 wide), or None if unreadable."""
    gray = frame.reformat(width=WIDTH, height=HEIGHT, format="gray")
    plane = gray.planes[0]
    data, stride = bytes(plane), plane.line_size
    copies = []
    for copy in range(COPIES):
        value = 0
        for bit in range(BITS):
            top = (copy * 2 + bit // COLUMNS) * BLOCK + BLOCK // 2
            left = (bit % COLUMNS) * BLOCK + BLOCK // 2
            value = value << 1 | (data[top * stride + left] > (DARK + LIGHT) // 2)
        copies.append(value)
    return copies[0] if len(set(copies)) == 1 else None


def latency_of(stamp: int, received_ms: int) -> int:
    return (received_ms - stamp) % (1 << BITS)


@contextmanager
def clock_publisher(ffmpeg_bin: str, publish_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """ffmpeg pushing clock-stamped frames (and a tone) to ``publish_url`` until the block
    ends. Frames are written on time by a thread; a late one is skipped, never queued."""
    argv = [
        ffmpeg_bin, "-hide_banner", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}",
        "-framerate", str(FPS), "-i", "pipe:0",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-g", str(FPS), "-pix_fmt", "yuv420p", "-b:v", "800k",
        "-c:a", "aac", "-b:a", "64k", "-shortest",
        "-f", "flv", publish_url,
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    writer = threading.Thread(target=_write_frames, args=(process, stop), daemon=True)
    writer.start()
    try:
        yield process
    finally:
        stop.set()
        writer.join(timeout=5)
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _write_frames(process: subprocess.Popen[bytes], stop: threading.Event) -> None:
    start, index = time.monotonic(), 0
    while not stop.is_set() and process.stdin is not None:
        try:
            process.stdin.write(clock_frame(now_ms(), index))
            process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return
        index += 1
        time.sleep(max(0.0, start + index / FPS - time.monotonic()))


async def whep_latency_samples(
    base_url: str,
    stream_id: str,
    viewer_token: str,
    *,
    seconds: float = 10.0,
    warmup_s: float = 2.0,
    host_addresses: Sequence[str] = ("127.0.0.1",),
) -> list[float]:
    """Watch ``stream_id`` over WHEP for ``seconds`` (after ``warmup_s``) and return the
    latency in ms of every frame whose clock stamp could be read."""
    restrict_host_addresses(host_addresses)
    pc = new_peer()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    samples: list[float] = []
    sink = MediaBlackhole()
    readers: list[asyncio.Task[None]] = []

    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            readers.append(asyncio.ensure_future(_read_stamps(track, samples, warmup_s)))
        else:
            sink.addTrack(track)

    pc.on("track", on_track)
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Authorization": f"Bearer {viewer_token}", "Content-Type": "application/sdp"}
    async with httpx2.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            f"/v1/live/{stream_id}/whep", content=pc.localDescription.sdp, headers=headers
        )
        if response.status_code != 201:
            await pc.close()
            raise RuntimeError(f"WHEP refused: {response.status_code} {response.text}")
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        try:
            await sink.start()
            if not await wait_connected(pc):
                raise RuntimeError("the WHEP viewer did not connect")
            await asyncio.sleep(warmup_s + seconds)
        finally:
            await client.delete(response.headers["location"], headers=headers)
            for reader in readers:
                reader.cancel()
            await sink.stop()
            await pc.close()
    return samples


async def _read_stamps(track: MediaStreamTrack, samples: list[float], warmup_s: float) -> None:
    started = time.monotonic()
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            received = now_ms()
            if not isinstance(frame, VideoFrame) or time.monotonic() - started < warmup_s:
                continue
            stamp = await asyncio.to_thread(read_clock, frame)
            if stamp is not None:
                samples.append(float(latency_of(stamp, received)))


def wait_until_previewable(
    base_url: str, stream_id: str, viewer_token: str, timeout_s: float = 30.0
) -> None:
    """Block until the stream is on air (the WHEP route stops answering 409)."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {viewer_token}"}
    while time.monotonic() < deadline:
        body = httpx2.get(f"{base_url}/v1/live/{stream_id}", headers=headers, timeout=5).json()
        if body.get("publishing") and body.get("state") in ("connecting", "live"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"stream {stream_id} did not go on air within {timeout_s:.0f} s")


def measure_whep_latency(
    base_url: str,
    rtmp_url: str,
    stream_id: str,
    stream_key: str,
    partner_key: str,
    *,
    seconds: float = 10.0,
    ffmpeg_bin: str = "ffmpeg",
) -> float:
    """Median WHEP frame latency in ms: publish a clock over RTMP to
    ``<rtmp_url>/<stream_key>``, watch ``stream_id`` over WHEP as the partner whose API key
    is ``partner_key`` (it must be able to GET the stream), for ``seconds``."""
    with clock_publisher(ffmpeg_bin, f"{rtmp_url.rstrip('/')}/{stream_key}"):
        wait_until_previewable(base_url, stream_id, partner_key)
        samples = asyncio.run(
            whep_latency_samples(base_url, stream_id, partner_key, seconds=seconds)
        )
    if not samples:
        raise RuntimeError("no frame with a readable clock stamp arrived over WHEP")
    return statistics.median(samples)
