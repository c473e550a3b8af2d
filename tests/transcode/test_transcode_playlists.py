"""Parsing ffmpeg's playlists, measuring segments, writing the master."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest

from transcode.playlists import (
    Bitrates,
    MasterEntry,
    combined,
    measure,
    parse_attributes,
    parse_master,
    render_master,
    segment_durations,
)

# Written by ffmpeg 5.1 for two video rungs and a shared audio group (blank lines included).
FFMPEG_MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_aud",NAME="audio_2",DEFAULT=YES,URI="v2/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1020800,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="group_aud"
v0/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=580800,RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2",AUDIO="group_aud"
v1/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS="mp4a.40.2",AUDIO="group_aud"
v2/index.m3u8
"""


def media_playlist(*segments: tuple[float, str]) -> str:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:4", '#EXT-X-MAP:URI="init_0.mp4"']
    for duration, uri in segments:
        lines += [f"#EXTINF:{duration:.6f},", uri]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def test_attributes_keep_commas_inside_quotes() -> None:
    attributes = parse_attributes('BANDWIDTH=10,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=2x2')

    assert attributes == {"BANDWIDTH": "10", "CODECS": "avc1.64001e,mp4a.40.2", "RESOLUTION": "2x2"}


def test_parse_master_reads_ffmpegs_variants_in_order() -> None:
    variants = parse_master(FFMPEG_MASTER)

    assert [v.uri for v in variants] == ["v0/index.m3u8", "v1/index.m3u8", "v2/index.m3u8"]
    assert variants[0].attributes["CODECS"] == "avc1.64001e,mp4a.40.2"
    assert variants[1].attributes["RESOLUTION"] == "426x240"
    assert "RESOLUTION" not in variants[2].attributes  # ffmpeg's audio-only variant


def test_segment_durations_pair_each_extinf_with_its_uri() -> None:
    text = media_playlist((4.0, "seg_00000.m4s"), (1.28, "seg_00001.m4s"))

    assert segment_durations(text) == [(4.0, "seg_00000.m4s"), (1.28, "seg_00001.m4s")]


def test_measure_counts_a_short_last_segment_with_its_neighbour(tmp_path: Path) -> None:
    sizes = {"a.m4s": 400_000, "b.m4s": 800_000, "c.m4s": 200_000}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"\0" * size)
    playlist = tmp_path / "index.m3u8"
    playlist.write_text(media_playlist((4.0, "a.m4s"), (4.0, "b.m4s"), (0.5, "c.m4s")))

    bitrates = measure(playlist)

    # c alone (3.2 Mbit/s over 0.5 s) is shorter than half the 4 s target, so it only counts
    # together with b: 8 Mbit over 4.5 s. The average spreads 11.2 Mbit over 8.5 s.
    assert bitrates == Bitrates(peak=round(8_000_000 / 4.5), average=round(11_200_000 / 8.5))


def test_combined_adds_the_audio_rendition() -> None:
    assert combined(Bitrates(1000, 800), Bitrates(130, 128)) == Bitrates(1130, 928)
    assert combined(Bitrates(1000, 800), None) == Bitrates(1000, 800)


ENTRY = MasterEntry("v0/index.m3u8", Bitrates(900_000, 700_000), "avc1.64001e", 640, 360, 29.97)


def test_render_master_with_a_shared_audio_group() -> None:
    text = render_master([ENTRY], ("v1/index.m3u8", Bitrates(140_000, 130_000)))
    variants = parse_master(text)

    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text.splitlines()
    assert 'TYPE=AUDIO,GROUP-ID="audio"' in text
    assert 'URI="v1/index.m3u8"' in text
    assert [v.uri for v in variants] == ["v0/index.m3u8", "v1/index.m3u8"]
    assert variants[0].attributes == {
        "BANDWIDTH": "1040000",
        "AVERAGE-BANDWIDTH": "830000",
        "CODECS": "avc1.64001e",
        "RESOLUTION": "640x360",
        "FRAME-RATE": "29.970",
        "AUDIO": "audio",
    }


def test_the_audio_only_variant_comes_last_with_the_audio_bitrates() -> None:
    text = render_master([ENTRY], ("v1/index.m3u8", Bitrates(140_000, 130_000)))

    audio_only = parse_master(text)[-1]

    assert audio_only.uri == "v1/index.m3u8"
    assert audio_only.attributes == {
        "BANDWIDTH": "140000",
        "AVERAGE-BANDWIDTH": "130000",
        "CODECS": "mp4a.40.2",
    }


def test_the_audio_only_variant_can_be_left_out() -> None:
    text = render_master([ENTRY], ("v1/index.m3u8", Bitrates(1, 1)), audio_only=False)

    assert [v.uri for v in parse_master(text)] == ["v0/index.m3u8"]


def test_the_master_reads_as_valid_hls_with_the_m3u8_package() -> None:
    low = MasterEntry("v1/index.m3u8", Bitrates(300_000, 250_000), "avc1.640015", 426, 240, 25.0)
    text = render_master([ENTRY, low], ("v2/index.m3u8", Bitrates(140_000, 130_000)))

    master = m3u8.loads(text)

    assert master.is_variant
    (media,) = master.media
    assert (media.type, media.group_id, media.uri, media.default) == (
        "AUDIO",
        "audio",
        "v2/index.m3u8",
        "YES",
    )
    video = [p for p in master.playlists if p.stream_info.resolution]
    (audio_only,) = [p for p in master.playlists if not p.stream_info.resolution]
    assert [p.stream_info.resolution for p in video] == [(640, 360), (426, 240)]
    assert [p.stream_info.frame_rate for p in video] == [29.97, 25.0]
    assert [p.stream_info.average_bandwidth for p in video] == [830_000, 380_000]
    assert all(p.stream_info.audio == "audio" for p in video)
    assert audio_only.stream_info.codecs == "mp4a.40.2"
    assert audio_only.stream_info.bandwidth == 140_000
    assert audio_only.uri == media.uri


@pytest.mark.parametrize("frame_rate", [None, 25.0])
def test_render_master_without_audio(frame_rate: float | None) -> None:
    entry = MasterEntry("v0/index.m3u8", Bitrates(9, 8), "avc1.64001e", 640, 360, frame_rate)

    text = render_master([entry], None)

    assert "EXT-X-MEDIA" not in text
    assert "AUDIO=" not in text
    assert ("FRAME-RATE=25.000" in text) == (frame_rate is not None)
    assert parse_master(text)[0].attributes["BANDWIDTH"] == "9"
