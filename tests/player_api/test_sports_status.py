"""A match's status from the server's clock: pure, table-driven, fixed clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from player_api.sports import LIVE_WITHOUT_WHISTLE, MatchStatus, match_status

KICKOFF = datetime(2026, 5, 1, 19, 0, tzinfo=UTC)
WHISTLE = KICKOFF + timedelta(minutes=105)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("kickoff", "final_whistle", "now", "expected"),
    [
        (None, None, KICKOFF, MatchStatus.UPCOMING),  # not scheduled yet
        (KICKOFF, None, KICKOFF - SECOND, MatchStatus.UPCOMING),
        (KICKOFF, WHISTLE, KICKOFF - timedelta(days=3), MatchStatus.UPCOMING),
        (KICKOFF, None, KICKOFF, MatchStatus.LIVE),  # live from the kickoff itself
        (KICKOFF, WHISTLE, WHISTLE - SECOND, MatchStatus.LIVE),
        (KICKOFF, WHISTLE, WHISTLE, MatchStatus.FINISHED),
        (KICKOFF, WHISTLE, WHISTLE + timedelta(days=1), MatchStatus.FINISHED),
        # No whistle recorded: live for two hours after kickoff, then finished.
        (KICKOFF, None, KICKOFF + LIVE_WITHOUT_WHISTLE - SECOND, MatchStatus.LIVE),
        (KICKOFF, None, KICKOFF + LIVE_WITHOUT_WHISTLE, MatchStatus.FINISHED),
        # Extra time past two hours: the recorded whistle wins over the default.
        (
            KICKOFF,
            KICKOFF + timedelta(hours=3),
            KICKOFF + timedelta(hours=2, minutes=30),
            MatchStatus.LIVE,
        ),
    ],
)
def test_match_status(
    kickoff: datetime | None, final_whistle: datetime | None, now: datetime, expected: MatchStatus
) -> None:
    assert match_status(kickoff, final_whistle, now) is expected


def test_default_live_window_is_two_hours() -> None:
    assert timedelta(hours=2) == LIVE_WITHOUT_WHISTLE
