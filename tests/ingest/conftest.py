"""Fixtures shared by the ingest tests."""

from __future__ import annotations

from tests.queues import queue as queue  # the broker's Redis, for the tests that read it
