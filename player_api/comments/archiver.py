"""Group commit for the archive: posts wait for their row to be committed (a message is
accepted only once it is durable), and every post that arrives while a batch is being
written joins the next one, so the database sees one INSERT per batch, not per message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from core.errors import Retryable
from player_api.comments.archive import Accepted

log = logging.getLogger(__name__)


class ArchiveFailed(Retryable):
    code = "comments_unavailable"


class Archiver:
    def __init__(self, write: Callable[[Sequence[Accepted]], None]) -> None:
        self._write = write
        self._pending: list[tuple[Accepted, asyncio.Future[None]]] = []
        self._due = asyncio.Event()

    async def add(self, item: Accepted) -> None:
        """Returns once ``item`` is committed; raises ArchiveFailed if it could not be."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._due.set()
        await future

    async def run(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            batch, self._pending = self._pending, []
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Accepted, asyncio.Future[None]]]) -> None:
        try:
            await run_in_threadpool(self._write, [item for item, _ in batch])
        except SQLAlchemyError as exc:
            log.warning("comment archive write failed (%d messages): %s", len(batch), exc)
            self._fail(batch)
            return
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the server is stopping
            # Whatever it was, this loop must live on: every later post waits on it.
            log.exception("comment archive write failed (%d messages)", len(batch))
            self._fail(batch)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    @staticmethod
    def _fail(batch: list[tuple[Accepted, asyncio.Future[None]]]) -> None:
        failure = ArchiveFailed("the comment could not be saved; try again")
        for _, future in batch:
            if not future.done():
                future.set_exception(failure)
