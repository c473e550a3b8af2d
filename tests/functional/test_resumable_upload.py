"""A clip sent through the resumable protocol to the real API (local store), processed by a
real Celery worker until it is ready to play."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.functional.stack import Stack, make_partner, wait_for_status
from tests.media import make_clip

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def partner(stack: Stack) -> str:
    return make_partner(stack, "resumable-league")


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=stack.base_url, timeout=60) as http:
        yield http


def test_resumable_upload_becomes_ready(
    client: httpx2.Client, partner: str, stack: Stack, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path, seconds=2, width=320, height=180, fps=25)
    data = clip.read_bytes()
    auth = {"Authorization": f"Bearer {partner}"}
    created = client.post(
        "/v1/uploads",
        headers=auth,
        json={
            "league": "resumable-league",
            "title": "Resumable E2E",
            "filename": clip.name,
            "content_type": "video/mp4",
            "size": len(data),
        },
    )
    assert created.status_code == 201, created.text
    upload = created.json()
    numbers = list(range(1, upload["part_count"] + 1))
    urls = client.post(
        f"/v1/uploads/{upload['upload_id']}/parts", headers=auth, json={"numbers": numbers}
    ).json()["parts"]
    size = upload["part_size"]
    for part in urls:
        start = (part["number"] - 1) * size
        # A bare client: the signed URL is the only credential the part PUT carries.
        sent = httpx2.put(part["url"], content=data[start : start + size], timeout=60)
        assert sent.status_code == 200, sent.text

    status = client.get(f"/v1/uploads/{upload['upload_id']}", headers=auth).json()
    assert (status["missing"], status["bytes_received"]) == ([], len(data))
    done = client.post(f"/v1/uploads/{upload['upload_id']}/complete", headers=auth)
    assert done.status_code == 200, done.text

    source = stack.media_dir / "sources" / upload["asset_id"] / "original"
    assert hashlib.sha256(source.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not (stack.media_dir / "uploads" / upload["upload_id"]).exists()
    ready = wait_for_status(client, upload["asset_id"], partner, {"ready", "failed"})
    assert ready["status"] == "ready", ready
    assert ready["renditions"]
