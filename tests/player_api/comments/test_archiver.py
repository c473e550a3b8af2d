"""Group commit: posts wait for their batch; a failed batch fails exactly its posts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

from player_api.comments.archive import Accepted
from player_api.comments.archiver import ArchiveFailed, Archiver
from player_api.comments.model import Author, Draft, State

AUTHOR = Author("user:1", "ana", None, datetime(2026, 1, 1, tzinfo=UTC), verified=False)


def accepted(n: int) -> Accepted:
    draft = Draft("c", AUTHOR, f"m{n}", datetime.now(UTC), None, State.VISIBLE)
    return Accepted(f"{n}-0", draft)


def test_concurrent_posts_share_batches_and_all_complete() -> None:
    batches: list[list[str]] = []

    def write(batch: Sequence[Accepted]) -> None:
        batches.append([item.id for item in batch])

    async def run() -> None:
        archiver = Archiver(write)
        task = asyncio.ensure_future(archiver.run())
        await asyncio.gather(*(archiver.add(accepted(n)) for n in range(20)))
        task.cancel()

    asyncio.run(run())
    assert sorted(i for batch in batches for i in batch) == sorted(f"{n}-0" for n in range(20))
    assert len(batches) < 20  # grouped


def test_a_failed_write_fails_its_posts_and_the_next_batch_still_works() -> None:
    calls = 0

    def write(batch: Sequence[Accepted]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1 and batch:
            raise OperationalError("INSERT", {}, Exception("database is gone"))

    async def run() -> None:
        archiver = Archiver(write)
        task = asyncio.ensure_future(archiver.run())
        with pytest.raises(ArchiveFailed):
            await archiver.add(accepted(1))
        await archiver.add(accepted(2))
        task.cancel()

    asyncio.run(run())
    assert calls == 2
