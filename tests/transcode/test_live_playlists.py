"""Live playlists: render and parse round trip, the window sliding, the discontinuity
sequence kept right, ENDLIST, program date times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import m3u8

from transcode.live_ladder import LiveRung
from transcode.live_playlists import (
    LiveSegment,
    MasterVariant,
    RungPlaylist,
    avc_codec,
    format_pdt,
    parse_media,
    parse_pdt,
    render_master,
    render_media,
    target_duration_for,
)

T0 = datetime(2026, 11, 30, 4, 30, 0, 123000, tzinfo=UTC)


def build(sessions: list[int], *, gap_s: float = 3.0) -> RungPlaylist:
    """Segments of 1 s for sessions of the given lengths, each after a pause of ``gap_s``."""
    playlist = RungPlaylist(target_duration_for(1.0))
    seq, at = 0, T0
    for number, length in enumerate(sessions, start=1):
        for index in range(length):
            playlist.append(
                LiveSegment(seq, 1.0, at, f"init-{number}.mp4", discontinuity=index == 0)
            )
            seq, at = seq + 1, at + timedelta(seconds=1)
        at += timedelta(seconds=gap_s)
    return playlist


def test_pdt_is_utc_with_milliseconds() -> None:
    assert format_pdt(T0) == "2026-11-30T04:30:00.123Z"
    assert parse_pdt("2026-11-30T04:30:00.123Z") == T0
    later = datetime(2026, 11, 30, 5, 30, 0, 123000, tzinfo=UTC).astimezone()
    assert format_pdt(later) == "2026-11-30T05:30:00.123Z"


def test_render_and_parse_round_trip() -> None:
    playlist = build([3, 2])
    text = render_media(playlist)
    assert parse_media(text) == playlist
    assert render_media(parse_media(text)) == text


def test_the_media_playlist_is_what_players_expect() -> None:
    text = render_media(build([3, 2]))
    parsed = m3u8.loads(text)
    assert str(parsed.version) == "7"
    assert parsed.target_duration == 1
    assert parsed.media_sequence == 0
    assert parsed.discontinuity_sequence == 0
    assert parsed.is_independent_segments
    assert [s.uri for s in parsed.segments] == ["0.m4s", "1.m4s", "2.m4s", "3.m4s", "4.m4s"]
    assert [s.discontinuity for s in parsed.segments] == [False, False, False, True, False]
    assert all(s.program_date_time is not None for s in parsed.segments)
    assert [m.uri for m in parsed.segment_map] == ["init-1.mp4", "init-2.mp4"]
    assert text.count("#EXT-X-PROGRAM-DATE-TIME:") == 5
    assert not parsed.is_endlist


def test_the_live_window_slides_and_counts_discontinuities_it_left_behind() -> None:
    playlist = build([3, 2, 4])  # discontinuities before seq 3 and seq 5
    window = playlist.window(4)  # seq 5..8: the tag of seq 5 is folded into the sequence
    assert [s.seq for s in window.segments] == [5, 6, 7, 8]
    assert window.discontinuity_sequence == 2
    assert not any(s.discontinuity for s in window.segments)
    parsed = m3u8.loads(render_media(window))
    assert (parsed.media_sequence, parsed.discontinuity_sequence) == (5, 2)
    assert parsed.segment_map[0].uri == "init-3.mp4"

    wider = playlist.window(6)  # seq 3..8: seq 3's tag folded, seq 5's tag kept
    assert wider.discontinuity_sequence == 1
    assert [s.seq for s in wider.segments if s.discontinuity] == [5]


def test_the_discontinuity_number_of_every_segment_never_changes_as_windows_slide() -> None:
    playlist = build([2, 3, 1, 4])

    def numbers(window: RungPlaylist) -> dict[int, int]:
        count, found = window.discontinuity_sequence, {}
        for position, segment in enumerate(window.segments):
            count += segment.discontinuity and position > 0
            found[segment.seq] = count
        return found

    everything = numbers(playlist)
    for size in range(1, 11):
        window = numbers(playlist.window(size))
        assert all(everything[seq] == number for seq, number in window.items())


def test_trimming_the_dvr_window_keeps_the_sequences_right() -> None:
    playlist = build([3, 3, 3])
    dropped = playlist.trim(4.0)
    assert [s.seq for s in dropped] == [0, 1, 2, 3, 4]
    assert [s.seq for s in playlist.segments] == [5, 6, 7, 8]
    # seq 3's tag went with it; seq 6's stays.
    assert playlist.discontinuity_sequence == 1
    assert [s.seq for s in playlist.segments if s.discontinuity] == [6]
    assert playlist.inits() == {"init-2.mp4", "init-3.mp4"}


def test_endlist_ends_both_playlists() -> None:
    playlist = build([2])
    playlist.ended = True
    assert render_media(playlist).endswith("#EXT-X-ENDLIST\n")
    assert render_media(playlist.window(1)).endswith("#EXT-X-ENDLIST\n")
    assert parse_media(render_media(playlist)).ended


def test_a_takeover_continues_from_the_parsed_dvr_playlist() -> None:
    stored = parse_media(render_media(build([3])))
    stored.append(LiveSegment(stored.next_seq, 1.0, T0 + timedelta(seconds=9), "init-2.mp4", True))
    assert [(s.seq, s.discontinuity) for s in stored.segments][-2:] == [(2, False), (3, True)]


def test_the_master_names_every_rung_highest_first() -> None:
    low = LiveRung("360p", 640, 360, 30.0, 600, 750)
    high = LiveRung("720p", 1280, 720, 30.0, 2400, 3000)
    text = render_master(
        [MasterVariant(low, "avc1.42c01e", True), MasterVariant(high, "avc1.64001f", True)],
        "live.m3u8",
    )
    parsed = m3u8.loads(text)
    assert [p.uri for p in parsed.playlists] == ["720p/live.m3u8", "360p/live.m3u8"]
    top = parsed.playlists[0].stream_info
    assert top.bandwidth == 3_128_000
    assert top.average_bandwidth == 2_528_000
    assert top.resolution == (1280, 720)
    assert top.codecs == "avc1.64001f,mp4a.40.2"
    assert top.frame_rate == 30.0


def test_the_codec_string_comes_from_the_avcc_box() -> None:
    init = b"\x00\x00\x00\x20avcC\x01\x64\x00\x1f\xff"
    assert avc_codec(init) == "avc1.64001f"
    assert avc_codec(b"no box here") == "avc1.640028"
