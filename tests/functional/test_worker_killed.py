"""A worker process killed with SIGKILL mid-transcode: the job is redelivered, the asset
reaches ``ready``, and a fan polling the whole time never gets a playlist naming a rung or
segment that does not exist."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx2
import m3u8
import pytest

from core.models import Asset
from tests.functional.stack import Stack, make_partner, wait_for_status
from tests.media import OddVideo, make_clip

pytestmark = pytest.mark.e2e
LEAGUE = "kill-league"


@pytest.fixture(scope="module")
def partner(stack: Stack) -> str:
    return make_partner(stack, LEAGUE)


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=stack.base_url, timeout=30) as http:
        yield http


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class FanWatcher(threading.Thread):
    """Fetches the master, every media playlist and every part they name, over and over."""

    def __init__(self, master_url: str) -> None:
        super().__init__(daemon=True)
        self.master_url = master_url
        self.stop = threading.Event()
        self.rounds = 0
        self.broken: list[str] = []

    def run(self) -> None:
        with httpx2.Client(timeout=10) as http:
            while not self.stop.is_set():
                self.broken += self.check(http)
                self.rounds += 1

    def check(self, http: httpx2.Client) -> list[str]:
        master = http.get(self.master_url)
        if master.status_code != 200:
            return [f"master {master.status_code}"]
        broken = []
        for uri in m3u8.loads(master.text).playlists + m3u8.loads(master.text).media:
            if uri.uri:
                broken += self.check_media(http, urljoin(self.master_url, uri.uri))
        return broken

    def check_media(self, http: httpx2.Client, url: str) -> list[str]:
        playlist = http.get(url)
        if playlist.status_code != 200:
            return [f"{url} {playlist.status_code}"]
        parsed = m3u8.loads(playlist.text)
        parts = [s.uri for s in parsed.segments] + [m.uri for m in parsed.segment_map]
        broken = []
        for part in parts:
            got = http.get(urljoin(url, part), headers={"Range": "bytes=0-0"})
            if got.status_code not in (200, 206):
                broken.append(f"{part} {got.status_code}")
        return broken


def test_a_killed_worker_redelivers_and_fans_never_see_a_missing_part(
    stack: Stack, client: httpx2.Client, partner: str, tmp_path: Path
) -> None:
    # A 2 s GOP, as editors export: the source is stream-copied and playable before the
    # ladder; the kill lands while the ladder is being encoded.
    clip = make_clip(tmp_path, seconds=20, width=1280, height=720, odd=OddVideo(gop=60))
    headers = {"Authorization": f"Bearer {partner}"}
    with clip.open("rb") as file:
        created = client.post(
            "/v1/assets",
            headers=headers,
            data={"league": LEAGUE, "title": "Killed mid-transcode"},
            files={"file": (clip.name, file, "video/mp4")},
        )
    assert created.status_code == 201, created.text
    asset_id = created.json()["id"]
    _wait_encoding(client, asset_id, headers)

    watcher = FanWatcher(client.post(f"/v1/playback/{asset_id}").json()["master_url"])
    watcher.start()
    killed = _kill_busy_pool_process(stack.worker_pid)
    ready = wait_for_status(client, asset_id, partner, {"ready", "failed"}, timeout_s=240)
    time.sleep(1)
    watcher.stop.set()
    watcher.join(timeout=30)

    assert killed, "no pool process was busy to kill"
    assert ready["status"] == "ready", ready
    renditions = ready["renditions"]
    assert isinstance(renditions, list)
    assert [r["height"] for r in renditions] == [720, 480, 360, 240]
    assert watcher.rounds >= 3
    assert watcher.broken == []
    with stack.sessions() as session:
        assert session.get_one(Asset, asset_id).attempt >= 2  # the job ran again


def _wait_encoding(client: httpx2.Client, asset_id: str, headers: dict[str, str]) -> None:
    """Until the first rung is playable and the ladder is being encoded."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(f"/v1/assets/{asset_id}", headers=headers).json()
        assert body["status"] not in ("failed", "ready"), body
        if body["status"] == "processing" and body["progress"] >= 15:
            return
        time.sleep(0.1)
    raise AssertionError("the ladder never started")


def _kill_busy_pool_process(worker_pid: int) -> list[int]:
    """SIGKILL the pool process that runs ffmpeg (it is the one with children)."""
    busy = [pid for pid in children_of(worker_pid) if children_of(pid)]
    for pid in busy:
        os.kill(pid, signal.SIGKILL)
    return busy
