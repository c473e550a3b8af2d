"""Republishing decoded WebRTC media into the RTMP edge: one ffmpeg per WHIP session.

Raw yuv420p video at a constant frame rate arrives on ffmpeg's stdin and raw s16le stereo
48 kHz audio on a second pipe; ffmpeg encodes H.264 (ultrafast, zerolatency, a keyframe
every second) and AAC and pushes FLV to the edge, whose ``on_publish`` hook then checks the
stream key exactly as for OBS. The frames carry no timestamps: the caller writes them on a
clock (``fps`` video frames and 48,000 audio samples per second), so ffmpeg's timeline is
the frame count.

Writes never block: each pipe's transport buffers at most a small bound, and a write that
would exceed it is refused (the frame is dropped, never queued). This module runs its
process with asyncio, like transcode.runner does with subprocess for batch jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000
AUDIO_CHANNELS = 2
AUDIO_BYTES_PER_SAMPLE = 2 * AUDIO_CHANNELS
_STDERR_LINES = 30


@dataclass(frozen=True)
class RawVideo:
    width: int
    height: int
    fps: int

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3 // 2


def republish_argv(ffmpeg_bin: str, video: RawVideo, audio_fd: int, target_url: str) -> list[str]:
    """ffmpeg: raw video on stdin + raw audio on descriptor ``audio_fd`` (inherited by the
    child under the same number) → H.264/AAC FLV to ``target_url``."""
    gop = str(video.fps)
    return [
        ffmpeg_bin, "-hide_banner", "-nostats", "-loglevel", "warning",
        # Raw inputs need no probing; a long probe of one pipe would starve the other,
        # whose writer follows the video's frame count (see ingest.whip).
        "-probesize", "32", "-analyzeduration", "0", "-thread_queue_size", "64",
        "-protocol_whitelist", "pipe",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{video.width}x{video.height}",
        "-framerate", gop, "-i", "pipe:0",
        "-probesize", "32", "-analyzeduration", "0", "-thread_queue_size", "64",
        "-protocol_whitelist", "pipe",
        "-f", "s16le", "-ar", str(AUDIO_RATE), "-ac", str(AUDIO_CHANNELS),
        "-i", f"pipe:{audio_fd}",
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        "-crf", "23", "-maxrate", "4M", "-bufsize", "4M",
        "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", target_url,
    ]  # fmt: skip


class Republisher:
    """A running republishing ffmpeg. ``write_video``/``write_audio`` return False when the
    frame was dropped because ffmpeg is behind (or gone)."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        audio: asyncio.WriteTransport,
        video: RawVideo,
    ) -> None:
        self._process = process
        self._audio = audio
        self.video = video
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stderr_task = asyncio.ensure_future(self._read_stderr())
        # About two frames of video and 250 ms of audio may wait in each pipe's buffer.
        self._video_limit = 2 * video.frame_bytes
        self._audio_limit = AUDIO_RATE * AUDIO_BYTES_PER_SAMPLE // 4

    @classmethod
    async def start(cls, ffmpeg_bin: str, video: RawVideo, target_url: str) -> Republisher:
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *republish_argv(ffmpeg_bin, video, read_fd, target_url),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(read_fd,),
                start_new_session=True,
            )
        finally:
            os.close(read_fd)
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(write_fd, "wb", buffering=0)
        transport, _protocol = await loop.connect_write_pipe(asyncio.BaseProtocol, pipe)
        return cls(process, transport, video)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    @property
    def pid(self) -> int:
        return self._process.pid

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def write_video(self, frame: bytes) -> bool:
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing() or self.returncode is not None:
            return False
        if stdin.transport.get_write_buffer_size() + len(frame) > self._video_limit:
            return False
        stdin.write(frame)
        return True

    def write_audio(self, samples: bytes) -> bool:
        if self._audio.is_closing() or self.returncode is not None:
            return False
        if self._audio.get_write_buffer_size() + len(samples) > self._audio_limit:
            return False
        self._audio.write(samples)
        return True

    async def stop(self, timeout_s: float = 5.0) -> int | None:
        """End of input: ffmpeg flushes and closes the RTMP connection (the edge then calls
        ``on_publish_done``); killed with its process group if it does not exit in time."""
        if self._process.stdin is not None and not self._process.stdin.is_closing():
            self._process.stdin.close()
        self._audio.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()
        self._stderr_task.cancel()
        return self._process.returncode

    async def _read_stderr(self) -> None:
        stream = self._process.stderr
        if stream is None:
            return
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            log.debug("republisher %s: %s", self._process.pid, text)
