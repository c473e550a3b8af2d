"""rights.windows: absolute and event-relative edges, TBD events, save-time checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidInput
from rights.model import EventAnchor, EventTimes, Window, WindowEdge
from rights.windows import UnresolvedWindow, check_window, resolve, resolve_edge

KICKOFF = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
EVENTS = EventTimes(kickoff=KICKOFF, final_whistle=KICKOFF + timedelta(minutes=110))
TBD = EventTimes()


def test_absolute_edge_resolves_to_itself() -> None:
    assert resolve_edge(WindowEdge(at=KICKOFF), TBD) == KICKOFF


def test_relative_edge_adds_the_lag() -> None:
    edge = WindowEdge(event=EventAnchor.FINAL_WHISTLE, lag_s=90 * 60)
    assert resolve_edge(edge, EVENTS) == KICKOFF + timedelta(minutes=200)


def test_negative_lag_is_before_the_event() -> None:
    edge = WindowEdge(event=EventAnchor.KICKOFF, lag_s=-600)
    assert resolve_edge(edge, EVENTS) == KICKOFF - timedelta(minutes=10)


def test_tbd_event_does_not_resolve() -> None:
    assert resolve_edge(WindowEdge(event=EventAnchor.KICKOFF), TBD) is None
    assert resolve_edge(WindowEdge(event=EventAnchor.BROADCAST_END), EVENTS) is None


@pytest.mark.parametrize(
    "edge",
    [
        WindowEdge(),
        WindowEdge(at=KICKOFF, event=EventAnchor.KICKOFF),
        WindowEdge(at=KICKOFF.replace(tzinfo=None)),
        WindowEdge(at=KICKOFF, lag_s=60),
    ],
)
def test_malformed_edge_does_not_resolve(edge: WindowEdge) -> None:
    # Evaluation must fail closed on data that skipped the save-time check.
    assert resolve_edge(edge, EVENTS) is None


def test_open_window_is_open_on_both_sides() -> None:
    assert resolve(Window(), TBD) == (None, None)


def test_resolve_both_edges() -> None:
    window = Window(WindowEdge(event=EventAnchor.KICKOFF), WindowEdge(at=KICKOFF + timedelta(1)))
    assert resolve(window, EVENTS) == (KICKOFF, KICKOFF + timedelta(days=1))


def test_unresolvable_is_distinct_from_open() -> None:
    window = Window(end=WindowEdge(event=EventAnchor.KICKOFF, lag_s=3600))
    with pytest.raises(UnresolvedWindow) as caught:
        resolve(window, TBD)
    assert caught.value.side == "end"
    assert "kickoff" in str(caught.value)


def test_valid_windows_pass() -> None:
    check_window(Window())
    check_window(Window(WindowEdge(at=KICKOFF), WindowEdge(event=EventAnchor.KICKOFF, lag_s=1)))
    check_window(Window(end=WindowEdge(event=EventAnchor.BROADCAST_END, lag_s=-60)))


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (Window(start=WindowEdge()), "either an absolute time or a match event"),
        (Window(end=WindowEdge(at=KICKOFF, event=EventAnchor.KICKOFF)), "not both"),
        (Window(start=WindowEdge(at=datetime(2026, 3, 1))), "no timezone"),
        (Window(start=WindowEdge(at=KICKOFF, lag_s=5)), "lag applies only"),
        (Window(WindowEdge(at=KICKOFF), WindowEdge(at=KICKOFF)), "not before end"),
        (
            Window(
                WindowEdge(event=EventAnchor.KICKOFF, lag_s=60),
                WindowEdge(event=EventAnchor.KICKOFF, lag_s=0),
            ),
            "start lag 60s is not before end lag 0s",
        ),
    ],
)
def test_invalid_windows_are_refused(window: Window, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        check_window(window)
