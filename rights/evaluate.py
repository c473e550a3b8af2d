"""Decide whether a viewer may watch an item now. Deny unless allowed.

Levels run root first (league → … → item). Only APPROVED grants of a requested licence type
count; a level without such grants does not constrain. Every constraining level must allow
the viewer through at least one of its grants (intersection), so a grant on a child level can
only narrow what its ancestors allow. With no constraining level at all the answer is
NO_GRANT. Live blackouts are checked only once the grants allow.

When a level denies, the reason shown is the most useful one among its grants, in this
order (``_RANK``): WINDOW_NOT_STARTED (only from a grant that would otherwise allow, with the
earliest start), TERRITORY / UNKNOWN_LOCATION, PLATFORM, ANONYMIZER, WINDOW_ENDED,
WINDOW_UNRESOLVED. A fan can act on "comes later" or "not where you are"; "ended" and
"unconfirmed time" are what is left when nothing better applies. Across several refusing
levels the same order applies, so "becomes available on …" is only said when every refusing
level is merely waiting (``available_from`` is then the latest of their starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from rights.model import (
    Blackout,
    BlackoutAction,
    Decision,
    EventTimes,
    Grant,
    GrantStatus,
    ItemRights,
    LicenseType,
    Reason,
    ScopeLevel,
    Viewer,
    VpnPolicy,
)
from rights.territories import country_name, covers
from rights.windows import UnresolvedWindow, resolve

# What geo databases answer when they do not know: no place, so never inside a licence.
_UNKNOWN_COUNTRIES = frozenset({"", "XX", "ZZ", "A1", "A2", "AP", "EU", "O1"})

_RANK = {
    Reason.WINDOW_NOT_STARTED: 0,
    Reason.TERRITORY: 1,
    Reason.UNKNOWN_LOCATION: 1,
    Reason.PLATFORM: 2,
    Reason.ANONYMIZER: 3,
    Reason.WINDOW_ENDED: 4,
    Reason.WINDOW_UNRESOLVED: 5,
}

# Enum member lookups go through the enum's metaclass (about 0.1 µs each); the hot path
# runs several per grant, so it uses these aliases.
_APPROVED = GrantStatus.APPROVED
_BLOCK_ANONYMOUS = VpnPolicy.BLOCK_ANONYMOUS
_ALLOWED = Reason.ALLOWED
_TERRITORY = Reason.TERRITORY
_UNKNOWN_LOCATION = Reason.UNKNOWN_LOCATION
_PLATFORM = Reason.PLATFORM
_ANONYMIZER = Reason.ANONYMIZER
_NOT_STARTED = Reason.WINDOW_NOT_STARTED
_ENDED = Reason.WINDOW_ENDED
_UNRESOLVED = Reason.WINDOW_UNRESOLVED

_PLATFORM_NAMES = {
    "web": "on the web",
    "ios": "on iPhone and iPad",
    "android": "on Android",
    "ctv": "on TV apps",
}

# Country names that read wrong without "the" in "not available in …".
_WITH_THE = frozenset({"US", "GB", "NL", "AE", "PH", "BS", "GM", "DO", "CF", "CD", "MV", "VA"})


class _Where(NamedTuple):
    """The viewer, normalised once per decision; ``country`` None means location unknown."""

    country: str | None
    subdivision: str | None
    platform: str
    anonymous: bool


# One grant's answer: (grant, ALLOWED or its most useful failure, resolved start, end).
# A plain tuple: up to one per grant per decision, and a NamedTuple costs ~40x more to build.
_Verdict = tuple[Grant, Reason, datetime | None, datetime | None]


def _where(viewer: Viewer) -> _Where:
    country = (viewer.country or "").upper()
    # A private or reserved address cannot have been located, whatever else was filled in.
    if country in _UNKNOWN_COUNTRIES or (viewer.ip is not None and not viewer.ip.is_global):
        return _Where(None, None, viewer.platform.lower(), viewer.anonymous)
    sub = (viewer.subdivision or "").upper() or None
    if sub is not None and "-" not in sub:
        sub = f"{country}-{sub}"  # GeoIP2 gives "CA" for California; grants store "US-CA"
    if sub is not None and not sub.startswith(country + "-"):
        sub = None  # a subdivision of another country is noise: fall back to country-level
    return _Where(country, sub, viewer.platform.lower(), viewer.anonymous)


def _territory_failure(grant: Grant, where: _Where) -> Reason | None:
    if grant.territories is None and not grant.excluded:
        return None  # worldwide with no exclusions: location does not matter
    if where.country is None:
        return _UNKNOWN_LOCATION
    if grant.territories is not None and not covers(
        grant.territories, where.country, where.subdivision
    ):
        return _TERRITORY
    if covers(grant.excluded, where.country, where.subdivision):
        return _TERRITORY
    return None


def _blocker(grant: Grant, where: _Where) -> Reason | None:
    """The first non-window failure, in ``_RANK`` order."""
    if (failure := _territory_failure(grant, where)) is not None:
        return failure
    if grant.platforms is not None and where.platform not in grant.platforms:
        return _PLATFORM
    if grant.vpn_policy == _BLOCK_ANONYMOUS and where.anonymous:
        return _ANONYMIZER
    return None


def _judge(grant: Grant, where: _Where, now: datetime, events: EventTimes) -> _Verdict:
    # A blocker outranks ENDED and UNRESOLVED, and NOT_STARTED is only reported for grants
    # that would otherwise allow, so a blocked grant's window need not be resolved.
    if (blocker := _blocker(grant, where)) is not None:
        return (grant, blocker, None, None)
    try:
        start, end = resolve(grant.window, events)
    except UnresolvedWindow:
        return (grant, _UNRESOLVED, None, None)
    if start is not None and now < start:
        return (grant, _NOT_STARTED, start, end)
    if end is not None and now >= end:
        return (grant, _ENDED, start, end)
    return (grant, _ALLOWED, start, end)


def _longest(allowing: list[_Verdict]) -> _Verdict:
    """The verdict whose window ends last (open beats any end); the first listed wins a tie."""
    best = allowing[0]
    for verdict in allowing[1:]:
        if best[3] is not None and (verdict[3] is None or verdict[3] > best[3]):
            best = verdict
    return best


def _failure_key(verdict: _Verdict) -> tuple[int, float]:
    _, reason, start, _ = verdict
    earliest = start.timestamp() if start is not None and reason is _NOT_STARTED else 0.0
    return (_RANK[reason], earliest)


def _judge_level(
    level: ScopeLevel,
    licenses: frozenset[LicenseType],
    where: _Where,
    now: datetime,
    ev: EventTimes,
) -> _Verdict | None:
    """The level's allowing grant that lasts longest, else its most useful failure; None
    when no grant on the level counts (APPROVED, of a requested type), so it does not
    constrain."""
    verdicts = [
        _judge(g, where, now, ev)
        for g in level.grants
        if g.status == _APPROVED and g.license_type in licenses
    ]
    if allowing := [v for v in verdicts if v[1] is _ALLOWED]:
        return _longest(allowing)
    return min(verdicts, key=_failure_key) if verdicts else None


def evaluate(
    item: ItemRights, viewer: Viewer, now: datetime, licenses: frozenset[LicenseType]
) -> Decision:
    """Whether ``viewer`` may watch ``item`` at ``now`` under any of ``licenses``.

    Pure and deny-by-default; see the module docstring for the rules. ``now`` must be
    timezone-aware (``ValueError`` otherwise). An allowed decision names the allowing grant
    of the deepest constraining level and is valid until the earliest end among the grants
    that allowed on each level (None when all are open).
    """
    if now.utcoffset() is None:
        raise ValueError("evaluate() needs a timezone-aware 'now'")
    where = _where(viewer)
    chosen: list[_Verdict] = []
    refusals: list[tuple[_Verdict, ScopeLevel]] = []
    for level in item.levels:
        verdict = _judge_level(level, licenses, where, now, item.events)
        if verdict is not None and verdict[1] is _ALLOWED:
            chosen.append(verdict)
        elif verdict is not None:
            refusals.append((verdict, level))
            if _RANK[verdict[1]] == _RANK[_TERRITORY]:
                break  # no deeper level can give a more useful reason (the root wins ties)
    if refusals:
        return _denied(*_most_useful(refusals), where, item)
    if not chosen:
        return Decision(False, Reason.NO_GRANT, f"{_noun(item)} isn't available to watch.")
    if item.is_live and (blackout := _blackout(item.blackouts, viewer, where, now)):
        return _blacked_out(blackout, item)
    return _allowed(chosen, item)


def _allowed(chosen: list[_Verdict], item: ItemRights) -> Decision:
    ends = [end for _, _, _, end in chosen if end is not None]
    return Decision(
        allowed=True,
        reason=_ALLOWED,
        message=f"{_noun(item)} is available to watch.",
        grant_id=chosen[-1][0].id,
        valid_until=min(ends) if ends else None,
    )


def _start_key(refusal: tuple[_Verdict, ScopeLevel]) -> float:
    start = refusal[0][2]
    return start.timestamp() if start is not None else 0.0


def _most_useful(refusals: list[tuple[_Verdict, ScopeLevel]]) -> tuple[_Verdict, ScopeLevel]:
    """Across levels, as within one: "not started yet" only when every refusing level says
    so, and then the latest start (when all of them will have started); otherwise the best
    ranked reason, the level nearest the root winning a tie."""
    lasting = [r for r in refusals if r[0][1] is not _NOT_STARTED]
    if lasting:
        return min(lasting, key=lambda r: _RANK[r[0][1]])
    return max(refusals, key=_start_key)


def _denied(verdict: _Verdict, level: ScopeLevel, where: _Where, item: ItemRights) -> Decision:
    grant, reason, start, _ = verdict
    return Decision(
        allowed=False,
        reason=reason,
        message=_deny_message(verdict, where, _noun(item)),
        available_from=start if reason is Reason.WINDOW_NOT_STARTED else None,
        details={"level": f"{level.kind}:{level.id}", "grant": str(grant.id)},
    )


# --- blackouts (live only) --------------------------------------------------------------


def _active(blackout: Blackout, now: datetime) -> bool:
    # A naive bound cannot be placed in time; treat it as open so the blackout still applies.
    start, end = blackout.start, blackout.end
    started = start is None or start.utcoffset() is None or start <= now
    return started and (end is None or end.utcoffset() is None or now < end)


def _subdivision_match(subdivisions: frozenset[str], where: _Where) -> bool:
    if where.country is None:
        return True  # unknown location: cannot rule the viewer out (fail closed)
    if where.subdivision is None:
        return any(s.startswith(where.country + "-") for s in subdivisions)
    return where.subdivision in subdivisions


def _in_audience(blackout: Blackout, viewer: Viewer, where: _Where) -> bool:
    """ANY of the non-empty criteria; an unknown viewer attribute counts as a match (fail
    closed), and a blackout with no criteria at all covers everyone."""
    b = blackout
    if not (b.countries or b.subdivisions or b.networks or b.platforms):
        return True
    ip = viewer.ip
    return bool(
        (b.countries and (where.country is None or where.country in b.countries))
        or (b.subdivisions and _subdivision_match(b.subdivisions, where))
        or (b.networks and (ip is None or any(ip in net for net in b.networks)))
        or (b.platforms and where.platform in b.platforms)
    )


def _blackout(
    blackouts: Sequence[Blackout], viewer: Viewer, where: _Where, now: datetime
) -> Blackout | None:
    """The highest-priority blackout in force for this viewer; the lower id wins a tie."""
    hits = [b for b in blackouts if _active(b, now) and _in_audience(b, viewer, where)]
    return max(hits, key=lambda b: (b.priority, -b.id)) if hits else None


def _blacked_out(blackout: Blackout, item: ItemRights) -> Decision:
    alternate = blackout.alternate_item if blackout.action == BlackoutAction.ALTERNATE else None
    message = f"{_noun(item)} is blacked out in your area."
    if alternate is not None:
        message += " We're showing you another programme instead."
    return Decision(
        allowed=False,
        reason=Reason.BLACKOUT,
        message=message,
        alternate_item=alternate,
        blackout_id=blackout.id,
    )


# --- messages ---------------------------------------------------------------------------


def _noun(item: ItemRights) -> str:
    return "This live stream" if item.is_live else "This highlight"


def _place(code: str) -> str:
    name = country_name(code)
    return f"the {name}" if code in _WITH_THE else name


def _territory_message(grant: Grant, where: _Where, noun: str) -> str:
    country = where.country or ""
    listed = (grant.territories or frozenset()) | grant.excluded
    # Say the region only when the licence is drawn at region level in this country.
    regional = any(code.startswith(country + "-") for code in listed)
    if regional and where.subdivision is None:
        return (
            f"{noun} is only available in parts of {_place(country)}, "
            "and we can't determine which region you're in."
        )
    place = where.subdivision if regional and where.subdivision else country
    return f"{noun} is not available in {_place(place)}."


def _platform_message(platform: str, noun: str) -> str:
    if platform.startswith("embed:"):
        return f"{noun} can't be played on {platform.removeprefix('embed:')}."
    return f"{noun} is not available {_PLATFORM_NAMES.get(platform, 'on this device')}."


def _deny_message(verdict: _Verdict, where: _Where, noun: str) -> str:
    grant, reason, start, _ = verdict
    if reason is Reason.TERRITORY:
        return _territory_message(grant, where, noun)
    if reason is Reason.PLATFORM:
        return _platform_message(where.platform, noun)
    if reason is Reason.UNKNOWN_LOCATION and grant.territories is None:
        return f"We can't determine your location, and {noun.lower()} is blocked in some countries."
    if reason is Reason.WINDOW_NOT_STARTED and start is not None:
        when = start.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{noun} becomes available on {when}."
    return _FIXED_MESSAGES[reason].format(noun=noun, lower=noun.lower())


_FIXED_MESSAGES = {
    Reason.UNKNOWN_LOCATION: (
        "We can't determine your location, and {lower} is only licensed in certain countries."
    ),
    Reason.ANONYMIZER: "{noun} can't be played through a VPN or proxy. Turn it off and try again.",
    Reason.WINDOW_ENDED: "{noun} is no longer available.",
    Reason.WINDOW_UNRESOLVED: (
        "{noun} isn't available yet: it depends on a match time that hasn't been confirmed."
    ),
}
