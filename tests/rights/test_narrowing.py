"""rights.narrowing: save-time self-consistency and "a child grant only narrows" checks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import InvalidInput
from rights.model import (
    EventAnchor,
    EventTimes,
    Grant,
    GrantStatus,
    LicenseType,
    VpnPolicy,
    Window,
    WindowEdge,
)
from rights.narrowing import GrantWidens, check_narrows, validate_grant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KNOWN = EventTimes(kickoff=T0, final_whistle=T0 + timedelta(hours=2))
TBD = EventTimes()


def grant(grant_id: int, territories: Iterable[str] | None = None, **kw: Any) -> Grant:
    kw.setdefault("license_type", LicenseType.HIGHLIGHTS)
    codes = None if territories is None else frozenset(territories)
    return Grant(id=grant_id, territories=codes, **kw)


def at(moment: datetime) -> WindowEdge:
    return WindowEdge(at=moment)


def after(anchor: EventAnchor, lag_s: int = 0) -> WindowEdge:
    return WindowEdge(event=anchor, lag_s=lag_s)


def widens(child: Grant, parent: Grant, events: EventTimes = KNOWN) -> str:
    with pytest.raises(GrantWidens) as caught:
        check_narrows(child, [parent], events)
    return str(caught.value)


# --- validate_grant -------------------------------------------------------------------------


def test_valid_grant_passes() -> None:
    validate_grant(
        grant(
            1,
            ["US", "FR"],
            excluded=frozenset({"US-NY"}),
            platforms=frozenset({"web", "ios", "embed:news.example.co.uk"}),
            window=Window(at(T0), after(EventAnchor.FINAL_WHISTLE, 3600)),
        )
    )
    validate_grant(grant(2, None, excluded=frozenset({"CU"})))


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (grant(1, ["FR", "QQ", "xx"]), "'QQ', 'xx'"),
        (grant(1, ["fr"]), "non-canonical codes 'fr'"),
        (grant(1, []), "empty list licenses nowhere"),
        (grant(1, ["FR"], excluded=frozenset({"DE"})), "DE is not inside the grant's territories"),
        (grant(1, ["US-CA"], excluded=frozenset({"US"})), "US-CA is both included and excluded"),
        (grant(1, platforms=frozenset()), "empty list allows nothing"),
        (grant(1, platforms=frozenset({"tv"})), "'tv' is not web, ios"),
        (grant(1, platforms=frozenset({"embed:localhost"})), "'embed:localhost'"),
        (grant(1, platforms=frozenset({"embed:*.example.com"})), "'embed:*.example.com'"),
        (grant(1, platforms=frozenset({"embed:Example.com"})), "'embed:Example.com'"),
        (grant(1, platforms=frozenset({"embed:a.com/path"})), "'embed:a.com/path'"),
        (grant(1, window=Window(start=WindowEdge())), "window start"),
        (grant(1, window=Window(at(T0), at(T0 - DAY))), "not before end"),
    ],
)
def test_inconsistent_grants_are_refused(bad: Grant, words: str) -> None:
    with pytest.raises(InvalidInput, match="grant #1") as caught:
        validate_grant(bad)
    assert words in str(caught.value)


def test_every_problem_is_listed() -> None:
    bad = grant(1, ["QQ"], platforms=frozenset({"tv"}), window=Window(start=WindowEdge()))
    with pytest.raises(InvalidInput) as caught:
        validate_grant(bad)
    assert str(caught.value).count(";") == 2


# --- check_narrows: which ancestors count ---------------------------------------------------


def test_no_ancestor_means_a_licence_of_its_own() -> None:
    check_narrows(grant(2, None), [], KNOWN)


def test_unapproved_or_other_type_ancestors_are_ignored() -> None:
    parents = [
        grant(1, ["SE"], status=GrantStatus.PENDING),
        grant(3, ["SE"], status=GrantStatus.REVOKED),
        grant(4, ["SE"], license_type=LicenseType.LIVE),
    ]
    check_narrows(grant(2, ["FR"]), parents, KNOWN)


def test_fitting_inside_one_ancestor_is_enough() -> None:
    check_narrows(grant(2, ["FR"]), [grant(1, ["SE"]), grant(3, ["FR", "DE"])], KNOWN)


def test_message_names_every_candidate_ancestor() -> None:
    with pytest.raises(GrantWidens) as caught:
        check_narrows(grant(2, ["FR"]), [grant(1, ["SE"]), grant(3, ["DE"])], KNOWN)
    message = str(caught.value)
    assert "FR is outside grant #1" in message
    assert "FR is outside grant #3" in message
    assert message.startswith("grant #2 is not inside any approved highlights grant")


# --- territories --------------------------------------------------------------------------


def test_territory_subset_passes() -> None:
    check_narrows(grant(2, ["FR", "US-CA"]), [grant(1, ["FR", "US", "SE"])], KNOWN)


def test_territory_outside_is_named() -> None:
    assert "territories: FR is outside grant #12" in widens(grant(2, ["FR"]), grant(12, ["SE"]))


def test_worldwide_child_under_a_list_widens() -> None:
    assert "worldwide is wider" in widens(grant(2, None), grant(1, ["SE"]))


def test_country_under_region_only_ancestor_widens() -> None:
    assert "US is outside" in widens(grant(2, ["US"]), grant(1, ["US-CA", "US-NY"]))


def test_child_must_keep_the_ancestors_exclusions() -> None:
    parent = grant(1, ["US"], excluded=frozenset({"US-NY"}))
    assert "US-NY is excluded by grant #1" in widens(grant(2, ["US"]), parent)
    assert "US-NY is excluded" in widens(grant(2, ["US-NY"]), parent)
    check_narrows(grant(2, ["US"], excluded=frozenset({"US-NY"})), [parent], KNOWN)
    check_narrows(grant(2, ["US-CA"]), [parent], KNOWN)


def test_worldwide_ancestor_with_exclusions() -> None:
    parent = grant(1, None, excluded=frozenset({"CU"}))
    check_narrows(grant(2, ["FR"]), [parent], KNOWN)
    check_narrows(grant(2, None, excluded=frozenset({"CU", "KP"})), [parent], KNOWN)
    assert "CU is excluded by grant #1" in widens(grant(2, None), parent)
    assert "CU is excluded by grant #1" in widens(grant(2, ["CU", "FR"]), parent)


def test_child_exclusion_can_make_it_fit() -> None:
    check_narrows(grant(2, ["US"], excluded=frozenset({"US"})), [grant(1, ["SE"])], KNOWN)


# --- platforms and VPN ------------------------------------------------------------------------


def test_platform_rules() -> None:
    parent = grant(1, platforms=frozenset({"web", "ios"}))
    check_narrows(grant(2, platforms=frozenset({"web"})), [parent], KNOWN)
    assert "platforms: android is outside grant #1" in widens(
        grant(2, platforms=frozenset({"web", "android"})), parent
    )
    assert "every platform is wider" in widens(grant(2), parent)
    check_narrows(grant(2, platforms=frozenset({"embed:a.example"})), [grant(1)], KNOWN)


def test_vpn_policy_cannot_loosen() -> None:
    strict = grant(1, vpn_policy=VpnPolicy.BLOCK_ANONYMOUS)
    assert "vpn: allows anonymizers" in widens(grant(2), strict)
    check_narrows(grant(2, vpn_policy=VpnPolicy.BLOCK_ANONYMOUS), [strict], KNOWN)
    check_narrows(grant(2, vpn_policy=VpnPolicy.BLOCK_ANONYMOUS), [grant(1)], KNOWN)


# --- windows ------------------------------------------------------------------------------


def with_window(grant_id: int, start: WindowEdge | None, end: WindowEdge | None) -> Grant:
    return grant(grant_id, window=Window(start, end))


def test_window_inside_passes() -> None:
    parent = with_window(1, at(T0 - DAY), at(T0 + 30 * DAY))
    check_narrows(with_window(2, at(T0), at(T0 + DAY)), [parent], KNOWN)
    # Resolved event edges compare against absolute ones when the match time is known.
    check_narrows(
        with_window(2, after(EventAnchor.KICKOFF), None), [with_window(1, at(T0), None)], KNOWN
    )


def test_window_outside_is_named() -> None:
    parent = with_window(1, at(T0), at(T0 + DAY))
    assert "window: start" in widens(with_window(2, at(T0 - DAY), at(T0 + DAY)), parent)
    assert "window: end" in widens(with_window(2, at(T0), at(T0 + 2 * DAY)), parent)
    assert "open start is wider" in widens(with_window(2, None, at(T0 + DAY)), parent)
    assert "open end is wider" in widens(with_window(2, at(T0), None), parent)


def test_same_anchor_compares_lags_even_when_tbd() -> None:
    parent = with_window(1, after(EventAnchor.FINAL_WHISTLE, 1800), None)
    check_narrows(with_window(2, after(EventAnchor.FINAL_WHISTLE, 3600), None), [parent], TBD)
    message = widens(with_window(2, after(EventAnchor.FINAL_WHISTLE, 600), None), parent, TBD)
    assert "window: start final_whistle+600s is before the start of grant #1" in message


def test_unverifiable_window_is_refused() -> None:
    parent = with_window(1, after(EventAnchor.KICKOFF), None)
    message = widens(with_window(2, after(EventAnchor.FINAL_WHISTLE), None), parent, TBD)
    assert "cannot verify the start against grant #1" in message
    # Once the match times are known the same pair compares.
    check_narrows(with_window(2, after(EventAnchor.FINAL_WHISTLE), None), [parent], KNOWN)
