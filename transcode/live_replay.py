"""Live to VOD: an ended stream's whole DVR (top rung, every session) into one MP4, copied.

Nothing is re-encoded: each publisher session's segments are stream-copied as one run and
the runs are laid end to end (the gaps while the publisher was away are skipped), with the
same machinery as a clip (:mod:`transcode.live_clip`). The MP4 becomes the source of the
stream's own asset, which the regular VOD pipeline then turns into a ladder.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import Conflict
from transcode.live_clip import Cut, CutTools, Dvr, Piece, assemble, plan_parts, read_dvr


class StillLive(Conflict):
    """The DVR has no end yet: the stream has not ended (or its last playlist is not out)."""

    code = "stream_not_ended"


def whole(dvr: Dvr) -> list[Piece]:
    """Every segment of the DVR, whole."""
    return [Piece(segment, 0.0, segment.duration_s) for segment in dvr.segments]


def build_replay(tools: CutTools, stream_id: str, work: Path) -> Cut:
    """The stream's replay MP4 under ``work``. Raises :class:`StillLive` unless the DVR
    playlist has its ``EXT-X-ENDLIST``, and ``NoDvr`` if nothing was recorded."""
    dvr = read_dvr(tools.store, stream_id)
    if not dvr.ended:
        raise StillLive("the stream's DVR playlist has not ended yet")
    pieces = whole(dvr)
    return assemble(tools, plan_parts(pieces), work, sum(p.duration_s for p in pieces))
