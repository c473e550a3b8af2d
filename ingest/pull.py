"""Pulling a clip from a URL a partner (or a league feed) gave us.

The request creates the asset in ``uploading`` with its ``source_url``; the task
``ingest.pull_asset`` streams the URL into the store through :mod:`core.safe_http` (so no
internal address is ever fetched) and queues processing. Failures leave the asset ``failed``
with ``url_refused``, ``download_failed`` or ``too_large`` and a sentence a partner can act on.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, lazyload, sessionmaker

from core.auth import Principal, require_league, require_role
from core.celery_app import enqueue_after_commit
from core.db import session_scope
from core.errors import InvalidInput, Retryable, TooLarge
from core.models import Asset, AssetStatus, League, Role
from core.safe_http import FetchFailed, FetchLimits, UrlRefused, check_url, open_url, parse_networks
from core.settings import Settings
from core.storage import ObjectStore
from ingest.uploads import UploadMeta, check_meta, league_by_slug, queue_processing, source_key

PULL_TASK = "ingest.pull_asset"
MAX_TEAMS = 20
MAX_TEAM = 100
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PullRequest:
    """What a partner sends to ``POST /v1/assets/pull``."""

    league: str
    title: str
    url: str
    description: str = ""
    teams: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class PullTools:
    """What the pull needs, passed in (the task builds it from the settings)."""

    sessions: sessionmaker[Session]
    store: ObjectStore
    limits: FetchLimits


def pull_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        timeout_s=float(settings.pull_timeout_s),
        max_bytes=settings.max_upload_bytes,
        allowed_networks=parse_networks(settings.pull_allowed_networks),
    )


def checked_url(url: str, settings: Settings) -> str:
    """Refuse at once what can be refused without fetching (scheme, credentials, host syntax,
    literal internal addresses); the task checks the resolved addresses again."""
    return check_url(url.strip(), parse_networks(settings.pull_allowed_networks)).url


def checked_teams(teams: Sequence[str]) -> list[str]:
    if len(teams) > MAX_TEAMS:
        raise InvalidInput(f"at most {MAX_TEAMS} teams")
    cleaned = [" ".join(team.split()) for team in teams]
    if any(not team or len(team) > MAX_TEAM for team in cleaned):
        raise InvalidInput(f"each team must be 1 to {MAX_TEAM} characters")
    return list(dict.fromkeys(cleaned))


def new_pulled_asset(session: Session, league: League, **fields: object) -> Asset:
    """An asset waiting for its source from ``source_url`` (call :func:`enqueue_pull` once it
    is sure to stay)."""
    asset = Asset(league=league, status=AssetStatus.UPLOADING, **fields)
    session.add(asset)
    session.flush()
    return asset


def enqueue_pull(session: Session, asset_id: str) -> None:
    """Send the pull task once ``session`` commits."""
    enqueue_after_commit(session, PULL_TASK, [asset_id])


def accept_pull(
    session: Session, principal: Principal, request: PullRequest, settings: Settings
) -> Asset:
    """Create the asset for a pull from a URL. **Who:** partners of the league and admins."""
    require_role(principal, Role.PARTNER)
    league = league_by_slug(session, request.league)
    require_league(principal, league.id)
    check_meta(UploadMeta(request.league, request.title, request.description))
    asset = new_pulled_asset(
        session,
        league,
        title=request.title.strip(),
        description=request.description,
        source_url=checked_url(request.url, settings),
        teams=checked_teams(request.teams),
        origin="url",
        created_by=principal.label,
    )
    enqueue_pull(session, asset.id)
    return asset


# --- the task's work --------------------------------------------------------------------------


class PullInterrupted(Retryable):
    """A download failed in a way worth another attempt (no connection, timeout, 5xx)."""

    code = "download_failed"


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of chunks, for ``ObjectStore.put_stream``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # RawIOBase's buffer type
        if not self._pending:
            self._pending = next(self._chunks, b"")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _retryable(exc: Exception) -> bool:
    """Connection errors, timeouts, 5xx, 408 and 429 (and a store that is down) may pass."""
    if not isinstance(exc, FetchFailed):
        return isinstance(exc, Retryable)
    status = exc.status_code
    return status is None or status >= 500 or status in (408, 429)


def _failure(exc: Exception, max_bytes: int) -> tuple[str, str]:
    """The reason code and the sentence a partner reads."""
    if isinstance(exc, UrlRefused):
        return UrlRefused.code, f"We will not fetch this URL: {exc}."
    if isinstance(exc, TooLarge):
        return TooLarge.code, f"The file at the URL is larger than the limit of {max_bytes} bytes."
    return FetchFailed.code, f"We could not download the clip from its URL: {exc}."


def _mark_failed(tools: PullTools, asset_id: str, exc: Exception) -> None:
    with session_scope(tools.sessions) as session:
        asset = session.get(Asset, asset_id)
        if asset is not None and asset.status is AssetStatus.UPLOADING:
            asset.status = AssetStatus.FAILED
            asset.error_code, asset.error_message = _failure(exc, tools.limits.max_bytes)


def _pending_url(tools: PullTools, asset_id: str) -> str | None:
    with session_scope(tools.sessions) as session:
        asset = session.get(Asset, asset_id)
        if asset is None or asset.status is not AssetStatus.UPLOADING:
            return None  # already pulled (a redelivered message), failed, or deleted
        return asset.source_url


def _download(tools: PullTools, asset_id: str, url: str) -> int:
    """Stream the URL into the asset's source key; the number of bytes stored."""
    with open_url(url, tools.limits) as response:
        if response.status != 200:
            raise FetchFailed(f"the server answered HTTP {response.status}", response.status)
        size = tools.store.put_stream(
            source_key(asset_id),
            io.BufferedReader(_ChunkReader(response.iter_chunks(CHUNK)), CHUNK),
            content_type=response.header("content-type") or None,
            max_bytes=tools.limits.max_bytes,
        )
        return size


def _mark_pulled(tools: PullTools, asset_id: str, size: int) -> None:
    with session_scope(tools.sessions) as session:
        # The league is joined eagerly by default, and FOR UPDATE refuses an outer join.
        locked = [lazyload(Asset.league)]
        asset = session.get(Asset, asset_id, with_for_update=True, options=locked)
        if asset is None or asset.status is not AssetStatus.UPLOADING:
            return
        asset.source_key = source_key(asset_id)
        asset.source_size = size
        queue_processing(session, asset)


def pull_source(tools: PullTools, asset_id: str, *, final: bool = True) -> None:
    """Fetch the asset's ``source_url`` into the store and queue its processing. A transient
    failure raises :class:`PullInterrupted` unless this is the ``final`` attempt; every other
    failure marks the asset failed with its reason."""
    url = _pending_url(tools, asset_id)
    if url is None:
        return
    try:
        size = _download(tools, asset_id, url)
    except (FetchFailed, Retryable) as exc:
        if _retryable(exc) and not final:
            raise PullInterrupted(str(exc)) from exc
        _mark_failed(tools, asset_id, exc)
        return
    except (UrlRefused, TooLarge) as exc:
        _mark_failed(tools, asset_id, exc)
        return
    _mark_pulled(tools, asset_id, size)
