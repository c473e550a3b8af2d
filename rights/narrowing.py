"""Save-time checks on grants: each grant makes sense on its own, and a grant below an
approved grant of the same licence type fits inside it.

Evaluation intersects levels anyway, so a wider child grant could never widen access; these
checks stop an editor from saving one that suggests it does. They are conservative: when a
narrowing cannot be proved (a country under an ancestor that lists only some of its regions,
a window tied to a match time that is not known), the grant is refused with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import InvalidInput
from rights.model import EventTimes, Grant, GrantStatus, VpnPolicy, WindowEdge
from rights.territories import covers, invalid_codes
from rights.windows import resolve_edge, window_problems

PLATFORMS = frozenset({"web", "ios", "android", "ctv"})

# embed:<domain>: lower-case letters, digits and hyphens per label (IDNs in punycode), at
# least two labels, an alphabetic or xn-- top-level label, 253 characters at most. No ports,
# paths or wildcards: the match at playback is exact.
_EMBED = re.compile(
    r"embed:(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
)


class GrantWidens(InvalidInput):
    """A child grant reaches outside every approved ancestor grant of its licence type."""

    code = "grant_widens"


def _within(code: str, codes: frozenset[str]) -> bool:
    """Whether the whole area of ``code`` (a country or a subdivision) lies inside ``codes``."""
    country, _, region = code.partition("-")
    return covers(codes, country, code if region else None)


def _overlaps(a: str, b: str) -> bool:
    return a == b or a == b.partition("-")[0] or b == a.partition("-")[0]


# --- self-consistency -------------------------------------------------------------------


def _territory_problems(grant: Grant) -> list[str]:
    listed = grant.territories
    if bad := invalid_codes([*sorted(listed or ()), *sorted(grant.excluded)]):
        return ["territories: unknown or non-canonical codes " + ", ".join(map(repr, bad))]
    if listed is None:
        return []  # worldwide: any exclusion narrows it
    if not listed:
        return ["territories: an empty list licenses nowhere (None means worldwide)"]
    outside = [
        f"excluded: {e} is not inside the grant's territories"
        for e in sorted(grant.excluded)
        if not _within(e, listed)
    ]
    # An included code wiped out by a broader exclusion (US-CA in, US out) is a mistake. The
    # same code in both is not: "EU except FR" stores FR in both once EU is expanded (the
    # service refuses a code the manager listed on both sides himself).
    cancelled = [
        f"excluded: {t} is both included and excluded"
        for t in sorted(listed)
        if t not in grant.excluded and _within(t, grant.excluded)
    ]
    return outside + cancelled


def _platform_problems(platforms: frozenset[str] | None) -> list[str]:
    if platforms is None:
        return []
    if not platforms:
        return ["platforms: an empty list allows nothing (None means every platform)"]
    return [
        f"platforms: {p!r} is not web, ios, android, ctv or embed:<domain>"
        for p in sorted(platforms)
        if p not in PLATFORMS and not _EMBED.fullmatch(p)
    ]


def validate_grant(grant: Grant) -> None:
    """Raise ``InvalidInput`` listing every inconsistency in ``grant`` on its own: codes
    unknown or not upper-case, exclusions outside the territories (or cancelling one
    entirely), unknown platforms or malformed embed domains, and window errors."""
    problems = [
        *_territory_problems(grant),
        *_platform_problems(grant.platforms),
        *window_problems(grant.window),
    ]
    if problems:
        raise InvalidInput(f"grant #{grant.id}: " + "; ".join(problems))


# --- narrowing --------------------------------------------------------------------------


def _excluded_again(parent: Grant, child: Grant, code: str, tag: str) -> list[str]:
    return [
        f"territories: {e} is excluded by {tag}"
        for e in sorted(parent.excluded)
        if _overlaps(e, code) and not _within(e, child.excluded)
    ]


def _territory_widenings(child: Grant, parent: Grant, tag: str) -> list[str]:
    if child.territories is None and parent.territories is not None:
        return [f"territories: worldwide is wider than the list of {tag}"]
    if child.territories is None:
        return [
            f"territories: {e} is excluded by {tag}"
            for e in sorted(parent.excluded)
            if not _within(e, child.excluded)
        ]
    problems: list[str] = []
    for code in sorted(child.territories):
        if _within(code, child.excluded):
            continue  # the child removes it again itself
        if parent.territories is not None and not _within(code, parent.territories):
            problems.append(f"territories: {code} is outside {tag}")
        problems += _excluded_again(parent, child, code, tag)
    return problems


def _platform_widenings(child: Grant, parent: Grant, tag: str) -> list[str]:
    if parent.platforms is None:
        return []
    if child.platforms is None:
        return [f"platforms: every platform is wider than the list of {tag}"]
    return [f"platforms: {p} is outside {tag}" for p in sorted(child.platforms - parent.platforms)]


def _describe(edge: WindowEdge) -> str:
    if edge.at is not None:
        return edge.at.isoformat()
    return f"{edge.event}{edge.lag_s:+d}s"


def _compare(child: WindowEdge, parent: WindowEdge, events: EventTimes) -> int | None:
    """-1/0/1 as ``child`` is before/at/after ``parent``; None when that cannot be known."""
    if (
        child.event is not None
        and child.event == parent.event
        and child.at is None
        and parent.at is None
    ):
        # Same anchor: the order holds whenever the match actually happens.
        return (child.lag_s > parent.lag_s) - (child.lag_s < parent.lag_s)
    mine, theirs = resolve_edge(child, events), resolve_edge(parent, events)
    if mine is None or theirs is None:
        return None
    return (mine > theirs) - (mine < theirs)


def _edge_widening(
    side: str, child: WindowEdge | None, parent: WindowEdge | None, events: EventTimes, tag: str
) -> list[str]:
    if parent is None:
        return []
    if child is None:
        return [f"window: an open {side} is wider than the {side} of {tag}"]
    order = _compare(child, parent, events)
    if order is None:
        return [f"window: cannot verify the {side} against {tag} (match time unknown)"]
    if order < 0 if side == "start" else order > 0:
        word = "before" if side == "start" else "after"
        return [f"window: {side} {_describe(child)} is {word} the {side} of {tag}"]
    return []


def _widenings(child: Grant, parent: Grant, events: EventTimes) -> list[str]:
    tag = f"grant #{parent.id}"
    vpn = (
        [f"vpn: allows anonymizers, which {tag} blocks"]
        if parent.vpn_policy == VpnPolicy.BLOCK_ANONYMOUS and child.vpn_policy == VpnPolicy.ALLOW
        else []
    )
    return [
        *_territory_widenings(child, parent, tag),
        *_platform_widenings(child, parent, tag),
        *_edge_widening("start", child.window.start, parent.window.start, events, tag),
        *_edge_widening("end", child.window.end, parent.window.end, events, tag),
        *vpn,
    ]


def check_narrows(child: Grant, ancestors: Sequence[Grant], events: EventTimes) -> None:
    """Raise ``GrantWidens`` unless ``child`` fits inside at least one APPROVED ancestor grant
    of its licence type (territories, platforms, window, VPN policy). With no such ancestor
    the child is a licence of its own and passes. The message names every rule broken
    against every candidate ancestor."""
    parents = [
        a
        for a in ancestors
        if a.status == GrantStatus.APPROVED and a.license_type == child.license_type
    ]
    reports = [_widenings(child, parent, events) for parent in parents]
    if not reports or not all(reports):
        return
    raise GrantWidens(
        f"grant #{child.id} is not inside any approved {child.license_type} grant above it: "
        + "; ".join(problem for report in reports for problem in report)
    )
