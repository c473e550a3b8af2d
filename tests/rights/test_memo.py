"""The per-request memos never outlive what they remember."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest

from rights import tokens
from rights.memo import DecisionMemo, TokenMemo
from rights.model import (
    CLIP_LICENSES,
    Grant,
    ItemRights,
    LicenseType,
    Reason,
    ScopeLevel,
    Viewer,
    Window,
    WindowEdge,
)

NOW = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)
GB = Viewer("GB", ip=ip_address("81.2.69.142"))
SE = Viewer("SE", ip=ip_address("89.160.20.112"))


def item_with(grant: Grant) -> ItemRights:
    return ItemRights("a1", (ScopeLevel("league", "1", (grant,)),))


GB_ONLY = Grant(1, LicenseType.HIGHLIGHTS, territories=frozenset({"GB"}))


def test_the_same_question_is_answered_from_memory() -> None:
    memo = DecisionMemo()
    item = item_with(GB_ONLY)
    first = memo.decide(item, GB, NOW, CLIP_LICENSES)
    assert memo.decide(item, GB, NOW + timedelta(milliseconds=500), CLIP_LICENSES) is first
    assert memo.decide(item, SE, NOW, CLIP_LICENSES).reason is Reason.TERRITORY


def test_new_rights_are_a_new_question() -> None:
    memo = DecisionMemo()
    assert memo.decide(item_with(GB_ONLY), GB, NOW, CLIP_LICENSES).allowed
    revoked = item_with(replace(GB_ONLY, territories=frozenset({"FR"})))  # the cache reloaded
    assert not memo.decide(revoked, GB, NOW, CLIP_LICENSES).allowed


def test_memory_ends_with_the_window_and_after_the_ttl() -> None:
    memo = DecisionMemo(ttl_s=1.0)
    closing = replace(GB_ONLY, window=Window(end=WindowEdge(at=NOW + timedelta(seconds=0.2))))
    item = item_with(closing)
    assert memo.decide(item, GB, NOW, CLIP_LICENSES).allowed
    after = memo.decide(item, GB, NOW + timedelta(seconds=0.3), CLIP_LICENSES)
    assert after.reason is Reason.WINDOW_ENDED
    opening = replace(GB_ONLY, window=Window(start=WindowEdge(at=NOW + timedelta(seconds=0.2))))
    later = item_with(opening)
    assert memo.decide(later, GB, NOW, CLIP_LICENSES).reason is Reason.WINDOW_NOT_STARTED
    assert memo.decide(later, GB, NOW + timedelta(seconds=0.3), CLIP_LICENSES).allowed


def test_a_remembered_token_still_expires() -> None:
    keys = tokens.SigningKeys.single(b"k" * 32)
    memo = TokenMemo(keys)
    token = tokens.sign(keys, {"a": "x"}, ttl_s=10, now=1000.0)
    assert memo.verify(token, now=1001.0, leeway_s=0)["a"] == "x"
    assert memo.verify(token, now=1005.0, leeway_s=0)["a"] == "x"
    with pytest.raises(tokens.InvalidToken, match="expired"):
        memo.verify(token, now=1011.0, leeway_s=0)
    with pytest.raises(tokens.InvalidToken):
        memo.verify(token[:-1] + ("B" if token.endswith("A") else "A"), now=1001.0, leeway_s=0)
