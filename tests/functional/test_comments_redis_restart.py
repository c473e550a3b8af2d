"""Redis killed and restarted (empty: no persistence) while fans post through two API
processes: posts during the outage are refused (503, nothing accepted), clients reconnect
and resume with ?after= (from the SQL archive once Redis has forgotten), and every accepted
message is in the archive and reached every client."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from core.models import CommentMessage, Role
from tests.functional.comments_clients import Poster, Reader, id_key, wait_until
from tests.functional.comments_stack import CommentStack, comment_servers, own_redis

pytestmark = pytest.mark.e2e

POSTS_PER_POSTER = 100
POST_INTERVAL_S = 0.05


def test_redis_restart_under_load_loses_no_accepted_message(tmp_path: Path) -> None:
    with (
        own_redis(tmp_path) as redis_server,
        comment_servers(
            tmp_path, redis_url=redis_server.url, overrides={"COURTSIDE_COMMENTS_FLUSH_MS": "50"}
        ) as stack,
    ):
        readers = [Reader(_url(stack, process)).start() for process in (0, 1, 0, 1)]
        time.sleep(1.0)
        posters = [
            Poster(stack.base_urls[i % 2], stack.channel, stack.user(f"m{i}", Role.MODERATOR)[1])
            for i in range(4)
        ]
        threads = [p.run(POSTS_PER_POSTER, POST_INTERVAL_S, f"p{i}") for i, p in enumerate(posters)]
        time.sleep(1.5)
        redis_server.kill()
        killed_at = time.monotonic()
        time.sleep(1.5)
        redis_server.start()
        for thread in threads:
            thread.join(timeout=120)
        accepted = sorted((m for p in posters for m in p.accepted), key=id_key)
        wait_until(lambda: all(set(accepted) <= set(r.ids) for r in readers), 30, "resume")
        for reader in readers:
            reader.join()
        archived = _archived(stack)
    refused = [code for p in posters for code in p.refused]
    assert refused, "the outage refused nothing: was Redis really down?"
    assert set(refused) <= {503}
    after_restart = [m for p in posters for m in p.accepted if p.sent_at[m] > killed_at + 1.5]
    assert after_restart, "nothing was accepted after the restart"
    assert set(accepted) <= archived  # no accepted message lost from the archive
    for reader in readers:
        assert reader.ids == sorted(set(reader.ids), key=id_key)  # in order, no repeats
        assert set(accepted) <= set(reader.ids)
        assert any(code in (1012, 1013, None) for code in reader.closes)  # it had to resume


def _url(stack: CommentStack, process: int) -> Callable[[str | None], str]:
    return lambda after: stack.ws_url(process, f"after={after}" if after else "")


def _archived(stack: CommentStack) -> set[str]:
    with stack.sessions() as session:
        query = select(CommentMessage.stream_id).where(CommentMessage.channel_id == stack.channel)
        return set(session.scalars(query))
