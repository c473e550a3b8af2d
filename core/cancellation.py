"""Keeping cancellation working in loops that retry on Redis errors.

redis-py may turn the cancellation of a task (a server shutting down) into a
``ConnectionError`` raised from the awaited command. A loop that catches Redis errors and
tries again then swallows the one ``CancelledError`` asyncio sends, runs on, and the
shutdown that awaits it hangs. Such loops call ``raise_if_cancelling`` where they recover."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise CancelledError when the current task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
