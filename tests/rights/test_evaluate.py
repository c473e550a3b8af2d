"""rights.evaluate: one pure decision per (item, viewer, instant, requested licences)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from rights.evaluate import evaluate
from rights.model import (
    CLIP_LICENSES,
    LIVE_LICENSES,
    Blackout,
    BlackoutAction,
    Decision,
    EventAnchor,
    EventTimes,
    Grant,
    GrantStatus,
    ItemRights,
    LicenseType,
    Reason,
    ScopeLevel,
    Viewer,
    VpnPolicy,
    Window,
    WindowEdge,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PUBLIC_IP = ip_address("81.2.69.142")
KINDS = ("league", "competition", "season", "match", "item")


def grant(grant_id: int, territories: Iterable[str] | None = None, **kw: Any) -> Grant:
    kw.setdefault("license_type", LicenseType.HIGHLIGHTS)
    codes = None if territories is None else frozenset(territories)
    return Grant(id=grant_id, territories=codes, **kw)


def item(*levels: Sequence[Grant], **kw: Any) -> ItemRights:
    scopes = tuple(
        ScopeLevel(KINDS[depth], str(depth), tuple(grants)) for depth, grants in enumerate(levels)
    )
    return ItemRights(item_id="clip-1", levels=scopes, **kw)


def viewer(country: str | None = "SE", **kw: Any) -> Viewer:
    kw.setdefault("ip", PUBLIC_IP)
    return Viewer(country=country, **kw)


def window(start: datetime | None = None, end: datetime | None = None) -> Window:
    return Window(
        start=WindowEdge(at=start) if start else None, end=WindowEdge(at=end) if end else None
    )


def decide(rights: ItemRights, who: Viewer | None = None, now: datetime = NOW) -> Decision:
    return evaluate(rights, who or viewer(), now, CLIP_LICENSES)


# --- grants and levels --------------------------------------------------------------------


def test_no_grant_denies() -> None:
    decision = decide(item([], []))
    assert (decision.allowed, decision.reason) == (False, Reason.NO_GRANT)
    assert decision.message == "This highlight isn't available to watch."


def test_allowed_decision_names_its_grant() -> None:
    decision = decide(item([grant(7, ["SE"])]))
    assert decision.allowed
    assert decision.reason is Reason.ALLOWED
    assert decision.grant_id == 7
    assert decision.valid_until is None


@pytest.mark.parametrize("status", [GrantStatus.PENDING, GrantStatus.REVOKED, GrantStatus.EXPIRED])
def test_only_approved_grants_count(status: GrantStatus) -> None:
    assert decide(item([grant(1, None, status=status)])).reason is Reason.NO_GRANT


def test_other_licence_types_do_not_count() -> None:
    live_only = item([grant(1, None, license_type=LicenseType.LIVE)])
    assert decide(live_only).reason is Reason.NO_GRANT
    assert evaluate(live_only, viewer(), NOW, LIVE_LICENSES).allowed


def test_grants_on_one_level_are_alternatives() -> None:
    rights = item([grant(1, ["FR"]), grant(2, ["SE"])])
    assert decide(rights, viewer("FR")).grant_id == 1
    assert decide(rights, viewer("SE")).grant_id == 2
    assert decide(rights, viewer("DE")).reason is Reason.TERRITORY


def test_levels_intersect_and_deepest_grant_is_named() -> None:
    rights = item([grant(1, ["FR", "SE"])], [], [grant(3, ["SE"])])
    assert decide(rights, viewer("SE")).grant_id == 3
    denied = decide(rights, viewer("FR"))
    assert denied.reason is Reason.TERRITORY
    assert denied.details == {"level": "season:2", "grant": "3"}


def test_child_grant_cannot_widen_its_parent() -> None:
    rights = item([grant(1, ["SE"])], [grant(2, ["SE", "FR"])])
    assert decide(rights, viewer("FR")).reason is Reason.TERRITORY
    assert decide(rights, viewer("SE")).allowed


def test_level_without_counted_grants_does_not_constrain() -> None:
    pending_elsewhere = grant(2, ["FR"], status=GrantStatus.PENDING)
    replay_elsewhere = grant(3, ["FR"], license_type=LicenseType.LIVE)
    rights = item([grant(1, ["SE"])], [pending_elsewhere, replay_elsewhere])
    assert decide(rights, viewer("SE")).grant_id == 1


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(item([grant(1)]), now=NOW.replace(tzinfo=None))


# --- territory and location -----------------------------------------------------------------


def test_territory_denial_names_the_country() -> None:
    decision = decide(item([grant(1, ["FR"])]), viewer("SE"))
    assert (decision.allowed, decision.reason) == (False, Reason.TERRITORY)
    assert decision.message == "This highlight is not available in Sweden."


def test_territory_message_uses_the_article() -> None:
    assert decide(item([grant(1, ["FR"])]), viewer("US")).message.endswith("in the United States.")


def test_worldwide_grant_needs_no_location() -> None:
    assert decide(item([grant(1, None)]), viewer(None, ip=None)).allowed


@pytest.mark.parametrize("country", [None, "XX", "", "A1"])
def test_unknown_location_is_denied_under_a_list(country: str | None) -> None:
    decision = decide(item([grant(1, ["SE"])]), viewer(country))
    assert decision.reason is Reason.UNKNOWN_LOCATION
    assert decision.message == (
        "We can't determine your location, and this highlight is only licensed in certain "
        "countries."
    )


def test_private_ip_viewer_is_denied_under_a_list() -> None:
    private = viewer(None, ip=ip_address("10.1.2.3"))
    assert decide(item([grant(1, ["SE"])]), private).reason is Reason.UNKNOWN_LOCATION


def test_private_ip_is_never_located_even_with_a_country() -> None:
    spoofed = viewer("SE", ip=ip_address("192.168.0.7"))
    assert decide(item([grant(1, ["SE"])]), spoofed).reason is Reason.UNKNOWN_LOCATION


def test_worldwide_grant_with_exclusions_needs_a_location() -> None:
    rights = item([grant(1, None, excluded=frozenset({"CU"}))])
    unknown = decide(rights, viewer(None))
    assert unknown.reason is Reason.UNKNOWN_LOCATION
    assert "blocked in some countries" in unknown.message
    assert decide(rights, viewer("CU")).reason is Reason.TERRITORY
    assert decide(rights, viewer("SE")).allowed


def test_lower_case_country_is_accepted() -> None:
    assert decide(item([grant(1, ["SE"])]), viewer("se")).allowed


def test_subdivision_grant() -> None:
    rights = item([grant(1, ["US-CA"])])
    assert decide(rights, viewer("US", subdivision="US-CA")).allowed
    assert decide(rights, viewer("US", subdivision="CA")).allowed  # GeoIP2's short form
    ny = decide(rights, viewer("US", subdivision="US-NY"))
    assert ny.reason is Reason.TERRITORY
    assert ny.message == "This highlight is not available in New York."
    unknown = decide(rights, viewer("US"))
    assert unknown.reason is Reason.TERRITORY
    assert "only available in parts of the United States" in unknown.message


def test_subdivision_of_another_country_is_ignored() -> None:
    rights = item([grant(1, ["US-CA"])])
    assert decide(rights, viewer("MX", subdivision="US-CA")).reason is Reason.TERRITORY


def test_excluded_beats_included() -> None:
    rights = item([grant(1, ["US"], excluded=frozenset({"US-NY"}))])
    assert decide(rights, viewer("US", subdivision="US-CA")).allowed
    ny = decide(rights, viewer("US", subdivision="US-NY"))
    assert ny.reason is Reason.TERRITORY
    assert ny.message == "This highlight is not available in New York."


# --- platform and VPN -----------------------------------------------------------------------


def test_platform_list() -> None:
    rights = item([grant(1, None, platforms=frozenset({"web", "android"}))])
    assert decide(rights, viewer(platform="android")).allowed
    ios = decide(rights, viewer(platform="ios"))
    assert ios.reason is Reason.PLATFORM
    assert ios.message == "This highlight is not available on iPhone and iPad."


def test_embed_matches_the_domain_exactly() -> None:
    rights = item([grant(1, None, platforms=frozenset({"embed:news.example.com"}))])
    assert decide(rights, viewer(platform="embed:news.example.com")).allowed
    other = decide(rights, viewer(platform="embed:evil.example.com"))
    assert other.reason is Reason.PLATFORM
    assert other.message == "This highlight can't be played on evil.example.com."
    assert decide(rights, viewer(platform="web")).reason is Reason.PLATFORM


def test_vpn_blocked_only_where_the_grant_says_so() -> None:
    strict = item([grant(1, ["SE"], vpn_policy=VpnPolicy.BLOCK_ANONYMOUS)])
    lenient = item([grant(1, ["SE"])])
    blocked = decide(strict, viewer(anonymous=True))
    assert blocked.reason is Reason.ANONYMIZER
    assert "VPN" in blocked.message
    assert decide(strict, viewer()).allowed
    assert decide(lenient, viewer(anonymous=True)).allowed


# --- windows --------------------------------------------------------------------------------


def test_window_not_started_says_when() -> None:
    start = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(HOUR))  # 14:00 UTC
    decision = decide(item([grant(1, ["SE"], window=window(start))]))
    assert decision.reason is Reason.WINDOW_NOT_STARTED
    assert decision.available_from == start
    assert decision.message == "This highlight becomes available on 2026-03-01 14:00 UTC."


def test_window_edges_start_inclusive_end_exclusive() -> None:
    rights = item([grant(1, None, window=window(NOW, NOW + HOUR))])
    assert decide(rights, now=NOW).allowed
    assert decide(rights, now=NOW + HOUR).reason is Reason.WINDOW_ENDED
    assert decide(rights, now=NOW - timedelta(seconds=1)).reason is Reason.WINDOW_NOT_STARTED


def test_window_ended() -> None:
    decision = decide(item([grant(1, None, window=window(end=NOW - HOUR))]))
    assert decision.reason is Reason.WINDOW_ENDED
    assert decision.message == "This highlight is no longer available."


def test_event_relative_window() -> None:
    after_whistle = Window(start=WindowEdge(event=EventAnchor.FINAL_WHISTLE, lag_s=1800))
    events = EventTimes(final_whistle=NOW - HOUR)
    assert decide(item([grant(1, None, window=after_whistle)], events=events)).allowed
    early = EventTimes(final_whistle=NOW - timedelta(minutes=10))
    pending = decide(item([grant(1, None, window=after_whistle)], events=early))
    assert pending.available_from == NOW + timedelta(minutes=20)


def test_tbd_event_denies_as_unresolved() -> None:
    relative = Window(start=WindowEdge(event=EventAnchor.KICKOFF))
    decision = decide(item([grant(1, None, window=relative)]))
    assert decision.reason is Reason.WINDOW_UNRESOLVED
    assert "hasn't been confirmed" in decision.message


def test_valid_until_is_the_earliest_end_across_levels() -> None:
    rights = item(
        [grant(1, None, window=window(end=NOW + 5 * HOUR))],
        [grant(2, None, window=window(end=NOW + 2 * HOUR)), grant(3, None)],
        [grant(4, None, window=window(end=NOW + 3 * HOUR))],
    )
    decision = decide(rights)
    assert decision.grant_id == 4
    # Level 2 allows through the open grant 3, so its shorter grant 2 does not cut the validity.
    assert decision.valid_until == NOW + 3 * HOUR


def test_valid_until_prefers_the_longest_allowing_grant_of_a_level() -> None:
    rights = item([grant(1, None, window=window(end=NOW + HOUR)), grant(2, None)])
    decision = decide(rights)
    assert (decision.grant_id, decision.valid_until) == (2, None)


# --- which reason is shown ------------------------------------------------------------------


def test_not_started_wins_with_the_earliest_start() -> None:
    later = grant(1, ["SE"], window=window(NOW + 3 * HOUR))
    sooner = grant(2, ["SE"], window=window(NOW + 2 * HOUR))
    elsewhere = grant(3, ["FR"])
    decision = decide(item([later, elsewhere, sooner]))
    assert decision.reason is Reason.WINDOW_NOT_STARTED
    assert decision.available_from == NOW + 2 * HOUR


def test_not_started_counts_only_for_grants_that_would_otherwise_allow() -> None:
    elsewhere_later = grant(1, ["FR"], window=window(NOW + HOUR))
    decision = decide(item([elsewhere_later]))
    assert decision.reason is Reason.TERRITORY
    assert decision.available_from is None


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        ([grant(1, ["FR"]), grant(2, None, platforms=frozenset({"ios"}))], Reason.TERRITORY),
        (
            [
                grant(1, None, vpn_policy=VpnPolicy.BLOCK_ANONYMOUS),
                grant(2, None, platforms=frozenset({"ios"})),
            ],
            Reason.PLATFORM,
        ),
        (
            [
                grant(1, None, window=window(end=NOW)),
                grant(2, None, vpn_policy=VpnPolicy.BLOCK_ANONYMOUS),
            ],
            Reason.ANONYMIZER,
        ),
        (
            [
                grant(1, None, window=Window(WindowEdge(event=EventAnchor.KICKOFF))),
                grant(2, None, window=window(end=NOW)),
            ],
            Reason.WINDOW_ENDED,
        ),
    ],
)
def test_reason_preference_within_a_level(grants: list[Grant], expected: Reason) -> None:
    assert decide(item(grants), viewer(anonymous=True)).reason is expected


def test_not_started_is_only_said_when_no_level_refuses_for_good() -> None:
    waiting = [grant(1, None, window=window(NOW + HOUR))]
    assert decide(item(waiting, [grant(2, ["FR"])])).reason is Reason.TERRITORY


def test_available_from_is_the_latest_start_across_waiting_levels() -> None:
    rights = item(
        [grant(1, None, window=window(NOW + HOUR))], [grant(2, None, window=window(NOW + 4 * HOUR))]
    )
    assert decide(rights).available_from == NOW + 4 * HOUR


# --- blackouts ------------------------------------------------------------------------------


def live(*blackouts: Blackout, is_live: bool = True) -> ItemRights:
    grants = [grant(1, None, license_type=LicenseType.LIVE)]
    return item(grants, blackouts=blackouts, is_live=is_live)


def watch_live(rights: ItemRights, who: Viewer | None = None) -> Decision:
    return evaluate(rights, who or viewer(), NOW, LIVE_LICENSES)


def test_blackout_blocks_its_audience() -> None:
    rights = live(Blackout(id=9, countries=frozenset({"SE"})))
    blocked = watch_live(rights)
    assert (blocked.allowed, blocked.reason, blocked.blackout_id) == (False, Reason.BLACKOUT, 9)
    assert blocked.message == "This live stream is blacked out in your area."
    assert watch_live(rights, viewer("FR")).allowed


def test_blackout_alternate_names_the_other_item() -> None:
    rights = live(
        Blackout(
            id=9,
            countries=frozenset({"SE"}),
            action=BlackoutAction.ALTERNATE,
            alternate_item="slate-1",
        )
    )
    decision = watch_live(rights)
    assert (decision.allowed, decision.reason) == (False, Reason.BLACKOUT)
    assert decision.alternate_item == "slate-1"
    assert decision.message.endswith("We're showing you another programme instead.")


def test_highest_priority_blackout_wins() -> None:
    low = Blackout(id=1, countries=frozenset({"SE"}), priority=1)
    high = Blackout(
        id=2,
        platforms=frozenset({"web"}),
        priority=5,
        action=BlackoutAction.ALTERNATE,
        alternate_item="slate",
    )
    assert watch_live(live(low, high)).blackout_id == 2


def test_blackouts_ignored_when_not_live() -> None:
    rights = live(Blackout(id=9, countries=frozenset({"SE"})), is_live=False)
    assert watch_live(rights).allowed


def test_blackout_outside_its_window_is_ignored() -> None:
    past = Blackout(id=9, countries=frozenset({"SE"}), start=NOW - 2 * HOUR, end=NOW - HOUR)
    future = Blackout(id=8, countries=frozenset({"SE"}), start=NOW + HOUR)
    assert watch_live(live(past, future)).allowed
    assert watch_live(live(Blackout(id=7, countries=frozenset({"SE"}), end=NOW + HOUR))).blackout_id


def test_blackout_audience_by_subdivision_network_and_platform() -> None:
    by_state = live(Blackout(id=1, subdivisions=frozenset({"US-NY"})))
    assert watch_live(by_state, viewer("US", subdivision="US-NY")).reason is Reason.BLACKOUT
    assert watch_live(by_state, viewer("US", subdivision="US-CA")).allowed
    # Unknown region inside the blacked-out country: cannot rule the viewer out.
    assert watch_live(by_state, viewer("US")).reason is Reason.BLACKOUT
    by_net = live(Blackout(id=2, networks=(ip_network("81.2.69.0/24"),)))
    assert watch_live(by_net).reason is Reason.BLACKOUT
    assert watch_live(by_net, viewer(ip=ip_address("8.8.8.8"))).allowed
    by_platform = live(Blackout(id=3, platforms=frozenset({"ctv"})))
    assert watch_live(by_platform, viewer(platform="ctv")).reason is Reason.BLACKOUT
    assert watch_live(by_platform).allowed


def test_blackout_applies_to_unknown_location() -> None:
    rights = live(Blackout(id=1, countries=frozenset({"SE"})))
    assert watch_live(rights, viewer(None, ip=None)).reason is Reason.BLACKOUT


def test_blackout_checked_only_after_grants_allow() -> None:
    rights = item(
        [grant(1, ["FR"], license_type=LicenseType.LIVE)],
        blackouts=(Blackout(id=1, countries=frozenset({"SE"})),),
        is_live=True,
    )
    assert watch_live(rights).reason is Reason.TERRITORY


def test_equal_priority_blackouts_pick_the_lower_id() -> None:
    first = Blackout(id=3, countries=frozenset({"SE"}))
    second = Blackout(id=2, platforms=frozenset({"web"}))
    assert watch_live(live(first, second)).blackout_id == 2


def test_alternate_without_an_item_blocks() -> None:
    rights = live(Blackout(id=1, countries=frozenset({"SE"}), action=BlackoutAction.ALTERNATE))
    decision = watch_live(rights)
    assert (decision.reason, decision.alternate_item) == (Reason.BLACKOUT, None)
    assert decision.message == "This live stream is blacked out in your area."


def test_blackout_with_no_audience_covers_everyone() -> None:
    assert watch_live(live(Blackout(id=1))).reason is Reason.BLACKOUT
