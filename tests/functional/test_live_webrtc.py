"""WebRTC end to end on loopback: WHIP publish → RTMP edge → live pipeline, and WHEP preview
of an RTMP publish with its frame latency.

Every ICE agent (the API's and this process's) offers only 127.0.0.1. The WHIP publisher is
an aiortc peer here sending a 320x240@30 moving pattern and a tone; the WHEP test publishes a
clock-stamped picture with ffmpeg over RTMP and reads the stamps off the frames it receives
(method in bench/live_webrtc.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess  # noqa: TID251 - ffprobe of the edge's feed
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from aiortc import RTCSessionDescription

from bench.live_webrtc import clock_publisher, wait_until_previewable, whep_latency_samples
from core.celery_app import app as celery_app
from core.webrtc import wait_connected
from tests.conftest import bearer
from tests.functional.stack import Stack, make_partner, running_stack
from tests.webrtc_peers import publisher_offer, viewer_offer

pytestmark = pytest.mark.timeout(240)
LOOPBACK_ONLY = {
    "COURTSIDE_WEBRTC_HOST_ADDRESSES": '["127.0.0.1"]',
    "COURTSIDE_WEBRTC_PEER_NETWORKS": '["127.0.0.0/8"]',
}
LEAGUE = "webrtc"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("webrtc"), live=True, overrides=LOOPBACK_ONLY) as s:
        yield s


@pytest.fixture(scope="module")
def partner(stack: Stack) -> str:
    return make_partner(stack, LEAGUE, live=True)


def new_stream(stack: Stack, partner: str) -> tuple[str, str]:
    body = {"league": LEAGUE, "title": "WebRTC test"}
    response = httpx2.post(f"{stack.base_url}/v1/live", json=body, headers=bearer(partner))
    assert response.status_code == 201, response.text
    created = response.json()
    return str(created["id"]), str(created["stream_key"])


def stream_state(stack: Stack, partner: str, stream_id: str) -> dict[str, object]:
    response = httpx2.get(f"{stack.base_url}/v1/live/{stream_id}", headers=bearer(partner))
    body: dict[str, object] = response.json()
    return body


def wait_for(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def probe_codecs(url: str) -> set[str]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_entries",
         "stream=codec_name", "-of", "json", url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {s["codec_name"] for s in json.loads(done.stdout)["streams"]}


def live_task_registered() -> bool:
    celery_app.loader.import_default_modules()
    return "transcode.run_live" in celery_app.tasks


async def publish_whip(
    stack: Stack, stream_id: str, key: str, hold: float, during: object
) -> tuple[str, object]:
    """Publish over WHIP; call ``during()`` (in a thread) once connected; DELETE at the end."""
    pc, offer = await publisher_offer()
    headers = {**bearer(key), "Content-Type": "application/sdp"}
    async with httpx2.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        response = await client.post(f"/v1/live/{stream_id}/whip", content=offer, headers=headers)
        assert response.status_code == 201, response.text
        location = response.headers["location"]
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        try:
            assert await wait_connected(pc), "the WHIP publisher did not connect"
            result = await asyncio.to_thread(during) if callable(during) else None
            await asyncio.sleep(hold)
        finally:
            deleted = await client.delete(location, headers=bearer(key))
            await pc.close()
    assert deleted.status_code == 204
    return location, result


def test_whip_publish_enters_the_live_pipeline_and_delete_ends_it(
    stack: Stack, partner: str
) -> None:
    stream_id, key = new_stream(stack, partner)
    feed = stack.pull_url(stream_id)

    def on_air() -> dict[str, object]:
        wait_for(lambda: stream_state(stack, partner, stream_id)["publishing"], 30, "on_publish")
        state = stream_state(stack, partner, stream_id)
        codecs = probe_codecs(feed)
        segments: list[Path] = []
        if live_task_registered():
            live_dir = stack.media_dir / "live" / stream_id

            def has_segments() -> bool:
                segments[:] = list(live_dir.glob("*/*.m4s"))
                return bool(segments)

            wait_for(has_segments, 60, "HLS segments from the WHIP feed")
        return {"state": state, "codecs": codecs, "segments": segments}

    _location, seen = asyncio.run(publish_whip(stack, stream_id, key, 1.0, on_air))
    assert isinstance(seen, dict)
    state = seen["state"]
    assert state["protocol"] == "whip"
    assert state["state"] in ("connecting", "live")
    assert state["sessions"] == 1
    assert {"h264", "aac"} <= seen["codecs"]
    if live_task_registered():
        assert seen["segments"]
    # DELETE closed the peer and the republisher: the edge tells the API the publisher left.
    wait_for(
        lambda: not stream_state(stack, partner, stream_id)["publishing"], 20, "publisher_left"
    )


def test_whep_preview_of_an_rtmp_publish_and_its_frame_latency(stack: Stack, partner: str) -> None:
    stream_id, key = new_stream(stack, partner)
    with clock_publisher("ffmpeg", f"{stack.rtmp_url}/{key}"):
        wait_until_previewable(stack.base_url, stream_id, partner)
        samples = asyncio.run(
            whep_latency_samples(stack.base_url, stream_id, partner, seconds=6.0, warmup_s=2.0)
        )
    assert len(samples) > 60, f"only {len(samples)} stamped frames arrived over WHEP"
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    print(f"WHEP frame latency over {len(samples)} frames: p50 {median:.0f} ms, p95 {p95:.0f} ms")  # noqa: T201 - the figure
    # The target is 500 ms; other tests share these two cores, so the check is looser.
    assert median < 1500


def test_whep_viewers_are_closed_when_the_feed_ends(stack: Stack, partner: str) -> None:
    """The publisher stops: the server's feed reader times out and closes its viewers."""
    stream_id, key = new_stream(stack, partner)
    publishing = contextlib.ExitStack()

    async def seconds_until_closed() -> float | None:
        pc, offer = await viewer_offer()
        headers = {**bearer(partner), "Content-Type": "application/sdp"}
        async with httpx2.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            response = await client.post(
                f"/v1/live/{stream_id}/whep", content=offer, headers=headers
            )
        assert response.status_code == 201, response.text
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        ended = asyncio.Event()
        pc.on("connectionstatechange", ended.set)
        try:
            assert await wait_connected(pc), "the WHEP viewer did not connect"
            ended.clear()
            await asyncio.to_thread(publishing.close)
            left = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), 40)
            return None if pc.connectionState == "connected" else time.monotonic() - left
        finally:
            await pc.close()

    with publishing:
        publishing.enter_context(clock_publisher("ffmpeg", f"{stack.rtmp_url}/{key}"))
        wait_until_previewable(stack.base_url, stream_id, partner)
        closed_after = asyncio.run(seconds_until_closed())
    assert closed_after is not None, "the server kept the viewer after the feed ended"
