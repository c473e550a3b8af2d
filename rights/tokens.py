"""Playback tokens: a compact HMAC-SHA256 signed payload, ``<kid>.<payload>.<signature>``.

The algorithm is pinned (there is no header to choose it from), the key id allows rotation,
and signatures are compared in constant time. The rights issue extends the payload (country,
grant, session); the format stays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import Forbidden


class InvalidToken(Forbidden):
    code = "invalid_token"


@dataclass(frozen=True)
class SigningKeys:
    """``current`` signs; every key in ``keys`` verifies (old keys stay until tokens expire)."""

    current: str
    keys: Mapping[str, bytes]

    @classmethod
    def single(cls, secret: bytes, kid: str = "k1") -> SigningKeys:
        # Derive a dedicated key so the app secret is never used raw for two purposes.
        derived = hmac.new(secret, b"courtside-playback-token", hashlib.sha256).digest()
        return cls(current=kid, keys={kid: derived})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, kid: str, body: str) -> str:
    return _b64(hmac.new(key, f"{kid}.{body}".encode(), hashlib.sha256).digest())


def sign(
    keys: SigningKeys, claims: Mapping[str, Any], *, ttl_s: int, now: float | None = None
) -> str:
    """A token for ``claims`` that expires ``ttl_s`` seconds from ``now``."""
    payload = {**claims, "exp": int((now or time.time()) + ttl_s)}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    kid = keys.current
    return f"{kid}.{body}.{_signature(keys.keys[kid], kid, body)}"


def verify(
    keys: SigningKeys, token: str, *, now: float | None = None, leeway_s: int = 0
) -> dict[str, Any]:
    """The claims of a valid, unexpired token (allowing ``leeway_s`` of clock skew between
    the API processes that sign and verify); InvalidToken otherwise."""
    if len(token) > 4096 or token.count(".") != 2 or not token.isascii():
        raise InvalidToken("malformed playback token")
    kid, body, signature = token.split(".")
    key = keys.keys.get(kid)
    if key is None or not hmac.compare_digest(_signature(key, kid, body), signature):
        raise InvalidToken("playback token signature is not valid")
    claims: dict[str, Any] = json.loads(_unb64(body))
    if not isinstance(claims.get("exp"), int) or claims["exp"] + leeway_s <= (now or time.time()):
        raise InvalidToken("playback token has expired; request playback again")
    return claims
