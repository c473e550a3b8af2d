"""The broker's Redis lists, as tests read and tidy them: commits really queue Celery tasks."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Iterable, Iterator
from typing import cast

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.models import Asset
from tests.conftest import REDIS_TEST_URL


@pytest.fixture
def queue() -> Iterator[redis.Redis]:
    """The Redis the broker keeps its queues in (the test DB the app is configured with)."""
    client = redis.Redis.from_url(REDIS_TEST_URL, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def task_args(raw: str) -> list[object]:
    """The positional arguments of a Celery message as it waits in Redis."""
    message = json.loads(raw)
    args: list[object] = json.loads(base64.b64decode(message["body"]))[0]
    return args


def sent(queue: redis.Redis, name: str, task: str) -> list[tuple[str, list[object]]]:
    """(raw message, args) of the ``task`` messages waiting in queue ``name``."""
    waiting = cast(list[str], queue.lrange(name, 0, -1))
    return [(raw, task_args(raw)) for raw in waiting if json.loads(raw)["headers"]["task"] == task]


def queued_for(queue: redis.Redis, asset_id: str) -> list[str]:
    """The messages waiting in the transcode queue that name ``asset_id``."""
    return [m for m in cast(list[str], queue.lrange("transcode", 0, -1)) if asset_id in m]


def forget(queue: redis.Redis, name: str, messages: Iterable[str]) -> None:
    for message in messages:
        queue.lrem(name, 0, message)


def forget_sent(queue: redis.Redis, name: str, task: str, ids: Collection[object]) -> None:
    """Drop the ``task`` messages in queue ``name`` whose first argument is one of ``ids``."""
    forget(queue, name, [raw for raw, args in sent(queue, name, task) if args and args[0] in ids])


def forget_assets(queue: redis.Redis, db: Session) -> None:
    """Drop the transcode messages of every asset the test's session can see."""
    try:
        asset_ids = db.scalars(select(Asset.id)).all()
    except SQLAlchemyError:
        return  # the test broke the session; its rows are rolled back anyway
    for asset_id in asset_ids:
        forget(queue, "transcode", queued_for(queue, asset_id))
