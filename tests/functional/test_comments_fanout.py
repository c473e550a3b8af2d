"""Two API processes, one Redis: whatever is posted through either reaches every WebSocket
and SSE client of both, in the same order, and reconnecting clients resume without gaps."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest
from websockets.sync.client import connect

from core.models import Role
from tests.functional.comments_clients import Poster, Reader, events, id_key, wait_until
from tests.functional.comments_stack import (
    COMMENTS_E2E_REDIS_URL,
    CommentStack,
    clear_comment_keys,
    comment_servers,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommentStack]:
    clear_comment_keys(COMMENTS_E2E_REDIS_URL)
    with comment_servers(
        tmp_path_factory.mktemp("comments"),
        redis_url=COMMENTS_E2E_REDIS_URL,
        overrides={"COURTSIDE_COMMENTS_FLUSH_MS": "50"},
    ) as running:
        yield running
    clear_comment_keys(COMMENTS_E2E_REDIS_URL)


def resuming_url(stack: CommentStack, process: int) -> Callable[[str | None], str]:
    return lambda after: stack.ws_url(process, f"after={after}" if after else "")


def test_posts_through_either_process_reach_clients_of_both_in_order(
    stack: CommentStack,
) -> None:
    readers = [Reader(resuming_url(stack, process)).start() for process in (0, 1, 0, 1)]
    time.sleep(1.0)  # every reader has joined
    # Six fans, three per process, each within the rate limit (3 messages per 2 s).
    posters = [
        Poster(stack.base_urls[i % 2], stack.channel, stack.user(f"fan{i}")[1]) for i in range(6)
    ]
    threads = [poster.run(3, 0.8, f"fan{i}") for i, poster in enumerate(posters)]
    for thread in threads:
        thread.join(timeout=30)
    accepted = sorted((m for p in posters for m in p.accepted), key=id_key)
    assert len(accepted) == 18
    wait_until(lambda: all(len(r.ids) >= 18 for r in readers), 10, "every message everywhere")
    for reader in readers:
        reader.join()
        assert reader.ids == accepted  # the same order everywhere: the ids' order
        assert reader.closes == [1000] or reader.closes == []
    latencies = [readers[0].received_at[m] - p.sent_at[m] for p in posters for m in p.accepted]
    assert max(latencies) < 3.0  # generous: the figures are `bench comments`' job


def test_websocket_posts_are_acked_and_reach_the_other_process(stack: CommentStack) -> None:
    _author, token = stack.user("wsfan")
    with (
        connect(stack.ws_url(1)) as reader,
        connect(stack.ws_url(0, f"token={token}")) as poster,
    ):
        events(reader)
        events(poster)
        poster.send(json.dumps({"type": "post", "text": "from a socket", "nonce": "n"}))
        ack = next(e for e in events(poster) if e["type"] == "ack")
        seen = next(e for e in events(reader) if e["type"] == "message")
    assert seen["id"] == ack["id"]
    assert seen["text"] == "from a socket"


def test_resume_after_a_disconnect_has_no_gaps(stack: CommentStack) -> None:
    _mod, token = stack.user("resumer", Role.MODERATOR)
    poster = Poster(stack.base_urls[0], stack.channel, token)
    with httpx2.Client() as client:
        first = poster.post(client, "before")
        with connect(stack.ws_url(1)) as ws:
            last_seen = events(ws)[-1]["id"]
        assert last_seen == first
        missed = [poster.post(client, f"while away {i}") for i in range(5)]
    with connect(stack.ws_url(0, f"after={last_seen}")) as ws:
        frame = events(ws)
    assert frame[0]["type"] == "mode"
    assert [event["id"] for event in frame[1:]] == missed


def test_server_sent_events_carry_the_same_stream_and_resume_by_last_event_id(
    stack: CommentStack,
) -> None:
    _mod, token = stack.user("ssefan", Role.MODERATOR)
    poster = Poster(stack.base_urls[0], stack.channel, token)
    url = f"{stack.base_urls[1]}/v1/comments/{stack.channel}/events"
    with httpx2.Client(timeout=10) as client:
        with client.stream("GET", url) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines).startswith("id: ")  # history up to its last message
            assert json.loads(next(lines).removeprefix("data: "))[0]["type"] == "mode"
            posted = poster.post(client, "over sse")
            assert next(lines) == ""
            assert next(lines) == f"id: {posted}"
            batch = json.loads(next(lines).removeprefix("data: "))
        assert [e["id"] for e in batch] == [posted]
        later = [poster.post(client, f"later {i}") for i in range(3)]
        with client.stream("GET", url, headers={"Last-Event-ID": str(posted)}) as stream:
            lines = stream.iter_lines()
            assert next(lines) == f"id: {later[-1]}"
            resumed = json.loads(next(lines).removeprefix("data: "))
    assert [e["id"] for e in resumed[1:]] == later
