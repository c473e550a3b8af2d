"""What a fan's player needs from a published clip, checked the way a player reads it: the
master and media playlists parsed with ``m3u8``, every part fetched, every rung probed.

``check_playback`` is the whole check; the smaller functions are there for tests that need
only a part of it.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess  # noqa: TID251 - ffprobe reads the published rungs as a player would
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx2
import m3u8
import pytest

AUDIO_ONLY_CODECS = "mp4a.40.2"
MPEGURL = "application/vnd.apple.mpegurl"


@dataclass(frozen=True)
class Rung:
    """A video variant of the master: its media playlist URL and the size it announces."""

    url: str
    width: int
    height: int


def check_playback(
    client: httpx2.Client, master_url: str, *, duration_s: float, has_audio: bool
) -> list[Rung]:
    """Everything below, for one master playlist; the video rungs it lists."""
    master = fetch_master(client, master_url)
    rungs = check_variants(master, master_url, has_audio=has_audio)
    for url in media_playlist_urls(master, master_url):
        check_media_playlist(client, url)
    for rung in rungs:
        check_rung(rung, duration_s=duration_s)
    if has_audio:
        check_audio(audio_url(master, master_url), duration_s=duration_s)
    return rungs


def fetch_master(client: httpx2.Client, url: str) -> m3u8.M3U8:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MPEGURL)
    master = m3u8.loads(response.text)
    assert master.is_variant, response.text
    return master


def check_variants(master: m3u8.M3U8, master_url: str, *, has_audio: bool) -> list[Rung]:
    """Every variant announces what a player picks by; the audio-only one (last, listed when
    the clip has audio) announces only its bitrates and codec. The video rungs."""
    audio_only = [p for p in master.playlists if p.stream_info.resolution is None]
    video = [p for p in master.playlists if p.stream_info.resolution is not None]
    assert video, master.dumps()
    for playlist in master.playlists:
        info = playlist.stream_info
        assert info.bandwidth, master.dumps()
        assert info.average_bandwidth, master.dumps()
        assert info.average_bandwidth <= info.bandwidth
        assert info.codecs, master.dumps()
    for playlist in video:
        assert playlist.stream_info.frame_rate, master.dumps()
        assert str(playlist.stream_info.codecs).startswith("avc1."), master.dumps()
    expected_audio_only = [AUDIO_ONLY_CODECS] if has_audio else []
    assert [p.stream_info.codecs for p in audio_only] == expected_audio_only, master.dumps()
    return [_rung(playlist, master_url) for playlist in video]


def _rung(playlist: m3u8.Playlist, master_url: str) -> Rung:
    resolution = playlist.stream_info.resolution
    assert resolution is not None
    return Rung(urljoin(master_url, playlist.uri), resolution[0], resolution[1])


def media_playlist_urls(master: m3u8.M3U8, master_url: str) -> list[str]:
    """Every media playlist the master names (variants and renditions), each once."""
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    return list(dict.fromkeys(urljoin(master_url, uri) for uri in uris))


def audio_url(master: m3u8.M3U8, master_url: str) -> str:
    renditions = [m for m in master.media if m.type == "AUDIO" and m.uri]
    assert len(renditions) == 1, master.dumps()
    return urljoin(master_url, renditions[0].uri)


def check_media_playlist(client: httpx2.Client, url: str) -> None:
    """A finished VOD playlist of fMP4 segments, and every part it names can be fetched."""
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    playlist = m3u8.loads(response.text)
    assert playlist.playlist_type == "vod", response.text
    assert playlist.is_endlist, response.text
    assert playlist.segments, response.text
    target = playlist.target_duration
    assert target is not None
    # RFC 8216 4.3.3.1: each EXTINF, rounded to the nearest integer, at most the target (an
    # AAC segment runs a few ms past the video's end: 3.03 s under a target of 3 is valid).
    durations = [s.duration or 0.0 for s in playlist.segments]
    assert all(d > 0 and _nearest(d) <= target for d in durations), response.text
    assert len(playlist.segment_map) == 1, response.text  # EXT-X-MAP: the fMP4 init section
    parts = [m.uri for m in playlist.segment_map] + [s.uri for s in playlist.segments]
    for part in parts:
        check_part(client, urljoin(url, part))


def check_part(client: httpx2.Client, url: str) -> None:
    """A segment or init section: served whole, or (on S3) a redirect to a presigned URL."""
    got = client.get(url, follow_redirects=True)
    assert got.status_code == 200, f"{url}: {got.status_code}"
    assert got.content, f"{url} is empty"
    assert len(got.history) <= 1, [r.url for r in got.history]


def _nearest(seconds: float) -> int:
    return math.floor(seconds + 0.5)  # round() would take 2.5 to 2


def check_rung(rung: Rung, *, duration_s: float) -> None:
    """The rung decodes as H.264 High 8-bit 4:2:0 at the size the master announces."""
    probed = ffprobe(rung.url)
    streams = probed["streams"]
    assert isinstance(streams, list)
    assert len(streams) == 1, streams  # audio is a rendition of its own
    video = streams[0]
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == (
        "h264",
        "High",
        "yuv420p",
    ), video
    assert (video["width"], video["height"]) == (rung.width, rung.height), video
    assert _duration(probed) == pytest.approx(duration_s, abs=0.5), probed["format"]


def check_audio(url: str, *, duration_s: float) -> None:
    probed = ffprobe(url)
    streams = probed["streams"]
    assert isinstance(streams, list)
    assert [(s["codec_type"], s["codec_name"]) for s in streams] == [("audio", "aac")]
    assert _duration(probed) == pytest.approx(duration_s, abs=0.5), probed["format"]


def _duration(probed: dict[str, object]) -> float:
    format_ = probed["format"]
    assert isinstance(format_, dict)
    return float(format_["duration"])


def ffprobe(url: str) -> dict[str, object]:
    """ffprobe's JSON about ``url``, fetched over loopback HTTP only."""
    argv = [
        shutil.which("ffprobe") or "ffprobe",
        "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
        "-protocol_whitelist", "http,tcp", url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    probed: dict[str, object] = json.loads(done.stdout)
    return probed
