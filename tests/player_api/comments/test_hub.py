"""The fan-out hub without a network: batching, audiences, the join cutoff, lag."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from player_api.comments.hub import LAGGING, Hub, Item, pump
from tests.player_api.comments.conftest import COMMENTS_REDIS_URL


@pytest.fixture
def hub() -> Hub:
    # The client is never used: these tests feed events straight in.
    return Hub(aioredis.Redis.from_url(COMMENTS_REDIS_URL), flush_s=0.01, queue_frames=3)


def message(n: int, audience: str = "P") -> Item:
    return Item.parse(f'{audience}{n}-0 {{"type":"message","id":"{n}-0"}}')


def frame_ids(frame: str) -> list[str]:
    return [event["id"] for event in json.loads(frame)]


def test_a_flush_sends_one_frame_per_connection_encoded_once(hub: Hub) -> None:
    first = hub.join("c", moderator=False, sse=False)
    second = hub.join("c", moderator=False, sse=False)
    hub.release(first, None)
    hub.release(second, None)
    for n in (1, 2, 3):
        hub.deliver("c", message(n))
    hub.flush()
    a, b = first.queue.get_nowait(), second.queue.get_nowait()
    assert frame_ids(a) == ["1-0", "2-0", "3-0"]
    assert a is b  # the same string object: encoded once for every connection
    assert first.queue.empty()


def test_moderator_only_events_reach_moderators_only(hub: Hub) -> None:
    fan = hub.join("c", moderator=False, sse=False)
    mod = hub.join("c", moderator=True, sse=False)
    sse = hub.join("c", moderator=False, sse=True)
    for listener in (fan, mod, sse):
        hub.release(listener, None)
    hub.deliver("c", message(1, "M"))
    hub.deliver("c", message(2))
    hub.flush()
    assert frame_ids(fan.queue.get_nowait()) == ["2-0"]
    assert frame_ids(mod.queue.get_nowait()) == ["1-0", "2-0"]
    assert sse.queue.get_nowait() == 'id: 2-0\ndata: [{"type":"message","id":"2-0"}]\n\n'


def test_events_during_a_join_are_held_then_sent_past_the_history(hub: Hub) -> None:
    joining = hub.join("c", moderator=False, sse=False)
    for n in (1, 2, 3):
        hub.deliver("c", message(n))
    hub.flush()
    assert joining.queue.empty()  # held while its history is read
    hub.release(joining, "2-0")  # the history ended with 2-0
    assert frame_ids(joining.queue.get_nowait()) == ["3-0"]


def test_a_connection_whose_queue_is_full_is_stopped_with_4008_and_freed(hub: Hub) -> None:
    slow = hub.join("c", moderator=False, sse=False)
    fast = hub.join("c", moderator=False, sse=False)
    hub.release(slow, None)
    hub.release(fast, None)
    for n in range(5):
        hub.deliver("c", message(n))
        hub.flush()
        if not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.stopped.is_set()
    assert slow.close_code == LAGGING
    assert slow.queue.get_nowait() == ""  # freed; the sentinel stops its sender
    assert hub.rooms["c"].listeners == {fast}


def test_the_sender_stops_on_the_sentinel() -> None:
    async def run() -> list[str]:
        hub = Hub(aioredis.Redis.from_url(COMMENTS_REDIS_URL), flush_s=0.01, queue_frames=4)
        listener = hub.join("c", moderator=False, sse=False)
        hub.release(listener, None)
        listener.queue.put_nowait("[1]")
        sent: list[str] = []

        async def send(frame: str) -> None:
            sent.append(frame)
            listener.stop(LAGGING)

        await asyncio.wait_for(pump(listener, send), 1)
        return sent

    assert asyncio.run(run()) == ["[1]"]


def test_the_fan_out_stops_promptly_when_cancelled() -> None:
    """A server stopping cancels the reader mid-read, again and again here. (Once, in a
    full test run, redis-py surfaced such a cancellation as a ConnectionError and the
    reader retried forever: see core.cancellation.raise_if_cancelling.)"""

    async def run() -> None:
        for _ in range(10):
            client = aioredis.Redis.from_url(COMMENTS_REDIS_URL, decode_responses=True)
            hub = Hub(client, flush_s=0.01, queue_frames=3)
            task = asyncio.ensure_future(hub.run())
            await asyncio.wait_for(hub.ready.wait(), 5)
            task.cancel()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 3)
            await client.aclose()

    asyncio.run(run())
