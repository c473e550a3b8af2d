"""Grant windows: absolute instants or match events plus a lag (EMA Avails StartCondition@lag).

An edge tied to an event whose time is not known yet (TBD) cannot be resolved, and an
unresolvable window denies: we never guess when a match starts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.errors import CourtsideError, InvalidInput
from rights.model import EventAnchor, EventTimes, Window, WindowEdge

_EVENT_FIELD = {
    EventAnchor.KICKOFF: "kickoff",
    EventAnchor.FINAL_WHISTLE: "final_whistle",
    EventAnchor.BROADCAST_END: "broadcast_end",
}


# Multiplying a constant is about twice as fast as building timedelta(seconds=...) per call.
_SECOND = timedelta(seconds=1)


class UnresolvedWindow(CourtsideError, LookupError):
    """A window edge depends on an event time that is not known yet (or the edge is malformed)."""

    code = "window_unresolved"

    def __init__(self, side: str, edge: WindowEdge) -> None:
        self.side = side
        self.edge = edge
        anchor = edge.event.value if edge.event is not None else "no event"
        super().__init__(f"window {side} cannot be resolved ({anchor} time unknown)")


def _aware(moment: datetime) -> bool:
    return moment.utcoffset() is not None


def resolve_edge(edge: WindowEdge, events: EventTimes) -> datetime | None:
    """The instant ``edge`` stands for, or None when it cannot be resolved.

    None covers a TBD event time and, so that evaluation fails closed, an edge that
    ``check_window`` would refuse (both or neither of ``at``/``event``, or a naive datetime).
    """
    # Evaluation calls this for every grant: test tzinfo rather than utcoffset() here (several
    # times cheaper); check_window applies the exact test when the grant is saved.
    if edge.at is not None:
        well_formed = edge.event is None and edge.lag_s == 0 and edge.at.tzinfo is not None
        return edge.at if well_formed else None
    field = _EVENT_FIELD.get(edge.event) if edge.event is not None else None
    base: datetime | None = getattr(events, field) if field is not None else None
    if base is None or base.tzinfo is None:
        return None
    return base + _SECOND * edge.lag_s if edge.lag_s else base


def resolve(window: Window, events: EventTimes) -> tuple[datetime | None, datetime | None]:
    """``(start, end)`` of ``window``; None means open on that side (always started/never ends).

    Raises ``UnresolvedWindow`` when a bounded edge cannot be resolved, which is distinct
    from an open edge.
    """
    start = end = None
    if window.start is not None and (start := resolve_edge(window.start, events)) is None:
        raise UnresolvedWindow("start", window.start)
    if window.end is not None and (end := resolve_edge(window.end, events)) is None:
        raise UnresolvedWindow("end", window.end)
    return start, end


def _edge_problems(side: str, edge: WindowEdge) -> list[str]:
    if (edge.at is None) == (edge.event is None):
        return [f"window {side}: give either an absolute time or a match event, not both/neither"]
    if edge.at is not None and not _aware(edge.at):
        return [f"window {side}: {edge.at.isoformat()} has no timezone"]
    if edge.at is not None and edge.lag_s != 0:
        return [f"window {side}: a lag applies only to an event-relative edge"]
    if edge.event is not None and edge.event not in _EVENT_FIELD:
        return [f"window {side}: unknown match event {edge.event!r}"]
    return []


def _order_problems(start: WindowEdge, end: WindowEdge) -> list[str]:
    if start.at is not None and end.at is not None and start.at >= end.at:
        return [f"window: start {start.at.isoformat()} is not before end {end.at.isoformat()}"]
    # Same anchor: the order is known whatever the event time turns out to be.
    if start.event is not None and start.event == end.event and start.lag_s >= end.lag_s:
        return [f"window: start lag {start.lag_s}s is not before end lag {end.lag_s}s"]
    return []


def window_problems(window: Window) -> list[str]:
    """Everything wrong with ``window``, as readable sentences; empty when it is valid."""
    problems: list[str] = []
    for side, edge in (("start", window.start), ("end", window.end)):
        if edge is not None:
            problems += _edge_problems(side, edge)
    if not problems and window.start is not None and window.end is not None:
        problems += _order_problems(window.start, window.end)
    return problems


def check_window(window: Window) -> None:
    """Raise ``InvalidInput`` unless each edge is exactly one of absolute (timezone-aware) or
    event-relative, and the start is before the end when that can be known at save time."""
    if problems := window_problems(window):
        raise InvalidInput("; ".join(problems))
