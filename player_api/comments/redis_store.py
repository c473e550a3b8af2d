"""The Redis side of comments: recent history (a Stream per channel), moderation overlays
(state and like counts by id), the cached channel settings and bans, admission (bans,
timeouts, slow mode, the token bucket: one Lua script, one round trip) and publishing.

Keys: ``comments:<ch>`` (Stream), ``comments:<ch>:state`` / ``:likes`` (hashes by id),
``:cfg`` (settings hash), ``:bans`` (set), ``:timeout:<author>``, ``:slow:<author>``,
``comments:bucket:<author>``; pub/sub ``comments:live:<ch>``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from player_api.comments.model import (
    ChannelSettings,
    CommentsUnavailable,
    Draft,
    Mode,
    dumps,
    message_event,
    parse_id,
)

LIVE_PREFIX = "comments:live:"
# Moderation overlays outlive the history they annotate by a margin, then expire.
OVERLAY_TTL_S = 7 * 24 * 3600
# Pub/sub envelope: audience letter, message id (may be empty), a space, the event JSON.
EVERYONE = "P"
MODERATORS = "M"

# XADD and PUBLISH in one script: every process sees a channel's messages in id order.
_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
local head = ARGV[4] .. id .. ' {"type":"message","id":"' .. id .. '",'
redis.call('PUBLISH', ARGV[3], head .. ARGV[2])
return id
"""

# Returns {verdict, retry_after_ms}. Bans and timeouts first (they apply to moderators'
# targets whatever the bucket says), then slow mode, then the token bucket: ARGV[3] tokens
# refilled at ARGV[4] per ms; an empty bucket starts a cool-down of ARGV[5] ms.
_ADMIT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return {'banned', 0} end
local timeout = redis.call('PTTL', KEYS[2])
if timeout > 0 then return {'timed_out', timeout} end
if ARGV[6] == '1' then return {'ok', 0} end
local slow = tonumber(ARGV[2])
if slow > 0 then
  local left = redis.call('PTTL', KEYS[3])
  if left > 0 then return {'slow_mode', left} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local cool = tonumber(ARGV[5])
local b = redis.call('HMGET', KEYS[4], 'tokens', 'ts', 'until')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
local blocked = tonumber(b[3]) or 0
if now < blocked then return {'rate_limited', blocked - now} end
tokens = math.min(cap, tokens + (now - ts) * rate)
local ttl = math.ceil(cap / rate) + cool + 1000
if tokens < 1 then
  local wait = math.max(cool, math.ceil((1 - tokens) / rate))
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens), 'ts', now, 'until', now + wait)
  redis.call('PEXPIRE', KEYS[4], ttl)
  return {'rate_limited', wait}
end
redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'ts', now, 'until', 0)
redis.call('PEXPIRE', KEYS[4], ttl)
if slow > 0 then redis.call('SET', KEYS[3], '1', 'PX', slow) end
return {'ok', 0}
"""


# A Stream entry as read with decode_responses: (id, {"m": message body}).
Entry = tuple[str, dict[str, str]]


@dataclass(frozen=True)
class RateConfig:
    messages: int
    window_s: float
    cooldown_s: float


@contextmanager
def unavailable_on_error() -> Iterator[None]:
    """Redis down (or restarting) becomes CommentsUnavailable: nothing was accepted."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise CommentsUnavailable("comments are unavailable for a moment; try again") from exc


def _key(channel: str, part: str) -> str:
    return f"comments:{channel}:{part}"


class RedisComments:
    """One per API process (its client belongs to the server's event loop)."""

    def __init__(self, client: aioredis.Redis, *, history_max: int, rate: RateConfig) -> None:
        self.client = client
        self.history_max = history_max
        self.rate = rate
        self._append = client.register_script(_APPEND)
        self._admit = client.register_script(_ADMIT)

    async def admit(
        self, channel: str, author: str, *, slow_mode_s: int, exempt: bool
    ) -> tuple[str, int]:
        """``("ok", 0)`` or the refusal and the milliseconds until it lifts."""
        keys = [
            _key(channel, "bans"),
            _key(channel, f"timeout:{author}"),
            _key(channel, f"slow:{author}"),
            f"comments:bucket:{author}",
        ]
        rate = self.rate
        args: list[str | int] = [
            author,
            slow_mode_s * 1000,
            rate.messages,
            repr(rate.messages / (rate.window_s * 1000)),
            int(rate.cooldown_s * 1000),
            "1" if exempt else "0",
        ]
        with unavailable_on_error():
            verdict, retry = await self._admit(keys=keys, args=args)
        return str(verdict), int(retry)

    async def append(self, draft: Draft, *, moderators_only: bool) -> str:
        """Add to the channel's history and publish, atomically; returns the new id."""
        audience = MODERATORS if moderators_only else EVERYONE
        args: list[str | int] = [
            self.history_max,
            draft.body(),
            LIVE_PREFIX + draft.channel,
            audience,
        ]
        with unavailable_on_error():
            message_id = await self._append(keys=[f"comments:{draft.channel}"], args=args)
        return str(message_id)

    async def publish(
        self, channel: str, event: dict[str, Any], *, moderators_only: bool = False
    ) -> None:
        audience = MODERATORS if moderators_only else EVERYONE
        with unavailable_on_error():
            await self.client.publish(LIVE_PREFIX + channel, f"{audience} {dumps(event)}")

    async def recent(self, channel: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The last ``limit`` messages here (oldest first), and whether that is all of them:
        False when Redis holds fewer (a young channel, or history lost in a restart)."""
        with unavailable_on_error():
            found = await self.client.xrevrange(f"comments:{channel}", count=limit)
        entries = cast("list[Entry]", found)
        return await self._with_overlays(channel, entries[::-1]), len(entries) >= limit

    async def after(
        self, channel: str, after: str, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Messages here after id ``after`` (oldest first), and whether history reaches back
        to it (False once trimmed past it, or lost in a restart)."""
        key = f"comments:{channel}"
        with unavailable_on_error():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xrange(key, count=1)
                pipe.xrange(key, min=f"({after}", count=limit)
                first, entries = await pipe.execute()
        complete = bool(first) and parse_id(first[0][0]) <= parse_id(after)
        return await self._with_overlays(channel, entries), complete

    async def _with_overlays(self, channel: str, entries: Sequence[Entry]) -> list[dict[str, Any]]:
        if not entries:
            return []
        ids = [entry_id for entry_id, _ in entries]
        with unavailable_on_error():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hmget(_key(channel, "state"), ids)
                pipe.hmget(_key(channel, "likes"), ids)
                states, likes = await pipe.execute()
        messages = []
        for (entry_id, fields), state, liked in zip(entries, states, likes, strict=True):
            message = json.loads(message_event(entry_id, fields["m"]))
            message["state"] = state or message["state"]
            message["likes"] = int(liked or 0)
            messages.append(message)
        return messages

    async def set_state(self, channel: str, ids: Sequence[str], state: str) -> None:
        if not ids:
            return
        key = _key(channel, "state")
        with unavailable_on_error():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=dict.fromkeys(ids, state))
                pipe.expire(key, OVERLAY_TTL_S)
                await pipe.execute()

    async def set_likes(self, channel: str, message_id: str, likes: int) -> None:
        key = _key(channel, "likes")
        with unavailable_on_error():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hset(key, message_id, likes)
                pipe.expire(key, OVERLAY_TTL_S)
                await pipe.execute()

    async def settings(self, channel: str) -> ChannelSettings | None:
        """The cached settings, or None when not cached (first use, or after a restart)."""
        with unavailable_on_error():
            found = cast("dict[str, str]", await self.client.hgetall(_key(channel, "cfg")))
        if not found:
            return None
        return ChannelSettings(
            Mode(found["mode"]), int(found["min_account_age_s"]), int(found["slow_mode_s"])
        )

    async def cache_settings(
        self, channel: str, settings: ChannelSettings, bans: Sequence[str]
    ) -> None:
        """Settings and bans together: a cached ``cfg`` promises the ban set is complete."""
        mapping: dict[FieldT, EncodableT] = {
            "mode": str(settings.mode),
            "min_account_age_s": settings.min_account_age_s,
            "slow_mode_s": settings.slow_mode_s,
        }
        with unavailable_on_error():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(_key(channel, "bans"))
                if bans:
                    pipe.sadd(_key(channel, "bans"), *bans)
                pipe.hset(_key(channel, "cfg"), mapping=mapping)
                await pipe.execute()

    async def ban(self, channel: str, author: str) -> None:
        with unavailable_on_error():
            await self.client.sadd(_key(channel, "bans"), author)

    async def unban(self, channel: str, author: str) -> None:
        with unavailable_on_error():
            await self.client.srem(_key(channel, "bans"), author)

    async def timeout(self, channel: str, author: str, seconds: int) -> None:
        with unavailable_on_error():
            await self.client.set(_key(channel, f"timeout:{author}"), "1", ex=seconds)
