"""rights.tokens: signed, expiring playback tokens with key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from core.errors import Forbidden
from rights.tokens import InvalidToken, SigningKeys, sign, verify

NOW = 1_800_000_000.0
CLAIMS = {"a": "asset123", "p": "hls/asset123/1"}
SECRET = b"app-secret-that-is-long-enough-0123456789"


@pytest.fixture
def keys() -> SigningKeys:
    return SigningKeys.single(SECRET)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip(keys: SigningKeys) -> None:
    token = sign(keys, CLAIMS, ttl_s=60, now=NOW)
    claims = verify(keys, token, now=NOW + 30)
    assert claims == {**CLAIMS, "exp": int(NOW + 60)}


def test_token_is_url_path_safe(keys: SigningKeys) -> None:
    token = sign(keys, {"a": "x" * 50, "p": "hls/é/1"}, ttl_s=60, now=NOW)
    assert token.count(".") == 2
    assert all(c.isalnum() or c in "-_." for c in token)
    assert verify(keys, token, now=NOW)["p"] == "hls/é/1"


def test_token_starts_with_the_current_kid(keys: SigningKeys) -> None:
    assert sign(keys, CLAIMS, ttl_s=60, now=NOW).startswith("k1.")


def test_invalid_token_is_a_forbidden() -> None:
    assert issubclass(InvalidToken, Forbidden)
    assert InvalidToken.code == "invalid_token"


@pytest.mark.parametrize("part", [0, 1, 2])
def test_any_tampered_part_is_refused(keys: SigningKeys, part: int) -> None:
    pieces = sign(keys, CLAIMS, ttl_s=60, now=NOW).split(".")
    piece = pieces[part]
    pieces[part] = piece[:-1] + ("A" if piece[-1] != "A" else "B")
    with pytest.raises(InvalidToken):
        verify(keys, ".".join(pieces), now=NOW)


def test_claims_cannot_be_changed_without_the_key(keys: SigningKeys) -> None:
    kid, _body, signature = sign(keys, CLAIMS, ttl_s=60, now=NOW).split(".")
    forged = _b64(json.dumps({"a": "other", "exp": int(NOW + 60), "p": "hls/other/1"}).encode())
    with pytest.raises(InvalidToken, match="signature"):
        verify(keys, f"{kid}.{forged}.{signature}", now=NOW)


def test_signature_is_not_made_with_the_raw_app_secret(keys: SigningKeys) -> None:
    kid, body, signature = sign(keys, CLAIMS, ttl_s=60, now=NOW).split(".")
    raw = _b64(hmac.new(SECRET, f"{kid}.{body}".encode(), hashlib.sha256).digest())
    assert raw != signature
    other_app = SigningKeys.single(b"a-different-secret-that-is-long-enough-000")
    with pytest.raises(InvalidToken):
        verify(other_app, f"{kid}.{body}.{signature}", now=NOW)


def test_expiry(keys: SigningKeys) -> None:
    token = sign(keys, CLAIMS, ttl_s=60, now=NOW)
    verify(keys, token, now=NOW + 59)
    with pytest.raises(InvalidToken, match="expired"):
        verify(keys, token, now=NOW + 60)  # expiry is exclusive
    with pytest.raises(InvalidToken, match="expired"):
        verify(keys, token, now=NOW + 3600)


def test_negative_ttl_is_already_expired(keys: SigningKeys) -> None:
    token = sign(keys, CLAIMS, ttl_s=-1)
    with pytest.raises(InvalidToken, match="expired"):
        verify(keys, token)


def test_verify_uses_the_clock_by_default(keys: SigningKeys) -> None:
    assert verify(keys, sign(keys, CLAIMS, ttl_s=60))["a"] == "asset123"
    with pytest.raises(InvalidToken):
        verify(keys, sign(keys, CLAIMS, ttl_s=60, now=time.time() - 3600))


def test_unknown_kid_is_refused(keys: SigningKeys) -> None:
    other = SigningKeys.single(SECRET, kid="k2")
    token = sign(other, CLAIMS, ttl_s=60, now=NOW)
    assert token.startswith("k2.")
    with pytest.raises(InvalidToken):
        verify(keys, token, now=NOW)


def test_rotation_keeps_old_tokens_valid_while_the_old_key_is_kept() -> None:
    old = SigningKeys(current="k1", keys={"k1": b"old-key-bytes-000000000000000000"})
    rotated = SigningKeys(
        current="k2",
        keys={"k1": b"old-key-bytes-000000000000000000", "k2": b"new-key-bytes-1111111111111111"},
    )
    old_token = sign(old, CLAIMS, ttl_s=60, now=NOW)
    new_token = sign(rotated, CLAIMS, ttl_s=60, now=NOW)
    assert new_token.startswith("k2.")
    assert verify(rotated, old_token, now=NOW)["a"] == "asset123"
    assert verify(rotated, new_token, now=NOW)["a"] == "asset123"
    # The old key alone does not know k2; once k1 is dropped, k1 tokens stop working.
    with pytest.raises(InvalidToken):
        verify(old, new_token, now=NOW)
    retired = SigningKeys(current="k2", keys={"k2": b"new-key-bytes-1111111111111111"})
    with pytest.raises(InvalidToken):
        verify(retired, old_token, now=NOW)
    assert verify(retired, new_token, now=NOW)["a"] == "asset123"


def test_kid_is_bound_into_the_signature() -> None:
    """The same key under two ids: a token cannot be relabelled to the other id."""
    both = SigningKeys(current="k1", keys={"k1": b"same-key-00000000", "k2": b"same-key-00000000"})
    _kid, body, signature = sign(both, CLAIMS, ttl_s=60, now=NOW).split(".")
    with pytest.raises(InvalidToken):
        verify(both, f"k2.{body}.{signature}", now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "nonsense",
        "a.b",
        "a.b.c.d",
        "..",
        "k1..",
        "k1.e30.",
        "k1.!!!.???",
        "k1.body.\u00e9\u00e9",
        "k\u00e9.body.sig",
        "k1." + "A" * 5000 + ".sig",
    ],
)
def test_malformed_token_is_refused(keys: SigningKeys, token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(keys, token, now=NOW)


def _signed(keys: SigningKeys, payload: bytes) -> str:
    body = _b64(payload)
    kid = keys.current
    signature = _b64(hmac.new(keys.keys[kid], f"{kid}.{body}".encode(), hashlib.sha256).digest())
    return f"{kid}.{body}.{signature}"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"a":"x"}',  # no expiry at all
        b'{"a":"x","exp":"9999999999"}',  # expiry of the wrong type
        b'{"a":"x","exp":9999999999.5}',
    ],
)
def test_validly_signed_token_without_an_integer_expiry_is_refused(
    keys: SigningKeys, payload: bytes
) -> None:
    with pytest.raises(InvalidToken):
        verify(keys, _signed(keys, payload), now=NOW)
