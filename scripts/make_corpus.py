"""Generate a corpus of odd and hostile uploads, each with the outcome we expect from probe.

    python scripts/make_corpus.py OUT_DIR [--local-file PATH] [--url URL] [--ffmpeg BIN]

Every entry of :data:`CORPUS` is a file name, a generator and the expected outcome: refused
with a reason code (``transcode.errors.REFUSAL_REASONS``), or accepted with the facts
``transcode.probe.probe`` must report. Playlists and lists point at ``--local-file`` and
``--url``; tests point them at a FIFO and a loopback server to prove nothing opens them.
Clips are at most 2 s and 320x240, except where size or length is the point (and those are
cheap: 8192x64 for half a second, one frame every ten minutes, a sparse file).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script from anywhere: the repository root holds the packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transcode.runner import run_ffmpeg

FFMPEG_TIMEOUT_S = 60.0
SMALL = "size=320x240:rate=30:duration=1"
# Just over the default upload limit (2 GiB); written sparse, so it takes no disk space.
SPARSE_BYTES = 2 * 1024**3 + 1


@dataclass(frozen=True)
class Targets:
    """What the playlists and lists in the corpus point at."""

    local_file: Path = Path("/etc/passwd")
    url: str = "http://127.0.0.1:9/segment.ts"


Maker = Callable[[Path, Targets, str], None]


@dataclass(frozen=True)
class Entry:
    """One corpus file: ``refused`` is the expected code, or None if it must be accepted.

    ``facts`` are ``ProbeResult`` attributes (properties too) and their expected values;
    ``references`` marks files that point at the :class:`Targets`.
    """

    name: str
    make: Maker
    refused: str | None = None
    facts: Mapping[str, object] = field(default_factory=dict)
    references: bool = False


def ffmpeg_clip(*args: str) -> Maker:
    """A generator running ``ffmpeg <args> <path>``: lavfi inputs and codec options."""

    def make(path: Path, targets: Targets, ffmpeg_bin: str) -> None:
        del targets  # media clips point at nothing
        argv = [ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
        run_ffmpeg([*argv, str(path)], timeout_s=FFMPEG_TIMEOUT_S)

    return make


def video(source: str = SMALL, *codec: str) -> Maker:
    """testsrc2 video, H.264 unless ``codec`` says otherwise, no audio."""
    options = codec or ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    return ffmpeg_clip("-f", "lavfi", "-i", f"testsrc2={source}", *options)


def with_audio(*extra: str) -> Maker:
    """320x240 H.264 + AAC, with ``extra`` output options."""
    return ffmpeg_clip(
        *("-f", "lavfi", "-i", f"testsrc2={SMALL}", "-f", "lavfi", "-i", "sine=duration=1"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"),
        *extra,
    )


Change = Callable[[Path, Path, str], None]


def then(first: Maker, change: Change) -> Maker:
    """Make a file with ``first`` beside ``path``, then turn it into ``path`` with ``change``."""

    def make(path: Path, targets: Targets, ffmpeg_bin: str) -> None:
        draft = path.with_name(f".draft-{path.name}")
        first(draft, targets, ffmpeg_bin)
        change(draft, path, ffmpeg_bin)
        draft.unlink()

    return make


def cut_in_half(draft: Path, path: Path, ffmpeg_bin: str) -> None:
    del ffmpeg_bin
    data = draft.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def renamed(draft: Path, path: Path, ffmpeg_bin: str) -> None:
    del ffmpeg_bin
    path.write_bytes(draft.read_bytes())


def grown_sparse(draft: Path, path: Path, ffmpeg_bin: str) -> None:
    del ffmpeg_bin
    path.write_bytes(draft.read_bytes())
    with path.open("r+b") as file:
        file.truncate(SPARSE_BYTES)  # a hole: no blocks written


def stream_copy(*options: str) -> Change:
    """Remux without re-encoding, e.g. to set rotation (lost if set while encoding)."""

    def change(draft: Path, path: Path, ffmpeg_bin: str) -> None:
        argv = [ffmpeg_bin, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        argv += ["-i", str(draft), "-c", "copy", *options, str(path)]
        run_ffmpeg(argv, timeout_s=FFMPEG_TIMEOUT_S)

    return change


def written(content: Callable[[Targets], bytes]) -> Maker:
    """A file whose bytes we write ourselves (text, playlists, junk)."""

    def make(path: Path, targets: Targets, ffmpeg_bin: str) -> None:
        del ffmpeg_bin
        path.write_bytes(content(targets))

    return make


def hls_to_file(targets: Targets) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
        f"#EXTINF:2.0,\n{targets.local_file}\n"
        f"#EXTINF:2.0,\nfile://{targets.local_file}\n#EXT-X-ENDLIST\n"
    ).encode()


def hls_to_url(targets: Targets) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
        f"#EXTINF:2.0,\n{targets.url}\n#EXT-X-ENDLIST\n"
    ).encode()


def ffconcat_to_file(targets: Targets) -> bytes:
    # A bare name: concat's "safe" mode allows it, so unfenced ffmpeg would open it.
    return f"ffconcat version 1.0\nfile '{targets.local_file.name}'\n".encode()


def concat_list_to_file(targets: Targets) -> bytes:
    return f"file '{targets.local_file}'\nfile '{targets.url}'\n".encode()


def dash_to_url(targets: Targets) -> bytes:
    return (
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">'
        f"<Period><AdaptationSet><Representation id='1'><BaseURL>{targets.url}</BaseURL>"
        "</Representation></AdaptationSet></Period></MPD>\n"
    ).encode()


def sdp_to_loopback(targets: Targets) -> bytes:
    del targets  # SDP names an address and port to listen on, not a URL
    return (
        b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\n"
    )


def notes_naming_a_file(targets: Targets) -> bytes:
    return f"Goal of the season, full clip at {targets.local_file}\n".encode()


def plain_notes(targets: Targets) -> bytes:
    del targets
    return b"Final score 2-1. Highlights to follow.\n"


def random_bytes(targets: Targets) -> bytes:
    del targets
    # Seeded, and a NUL first so the bytes are neither text nor any container's signature.
    return b"\x00\x01" + random.Random(20260101).randbytes(64 * 1024)  # noqa: S311 - test data


def nothing(targets: Targets) -> bytes:
    del targets
    return b""


PNG_FRAME = video("size=160x120:rate=1:duration=1", "-frames:v", "1", "-c:v", "png", "-f", "image2")
THEORA = ("-c:v", "libtheora", "-q:v", "5")

CORPUS: tuple[Entry, ...] = (
    # Accepted: what a partner's camera, phone or editor might produce.
    Entry(
        "h264_aac.mp4",
        with_audio(),
        facts={"width": 320, "height": 240, "audio_codec": "aac", "audio_streams": 1},
    ),
    Entry("no_audio.mp4", video(), facts={"has_audio": False, "audio_streams": 0}),
    Entry(
        "two_audio.mkv",
        ffmpeg_clip(
            *("-f", "lavfi", "-i", f"testsrc2={SMALL}"),
            *("-f", "lavfi", "-i", "sine=duration=1", "-f", "lavfi", "-i", "sine=f=220:d=1"),
            *("-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast"),
            *("-c:a", "aac", "-ac:a:0", "2", "-ac:a:1", "6"),
        ),
        facts={"container": "matroska,webm", "audio_streams": 2, "audio_channels": 2},
    ),
    Entry(
        "mpegts.ts",
        with_audio("-f", "mpegts"),
        facts={"container": "mpegts", "has_audio": True},
    ),
    Entry(
        "rotated_90.mp4",
        then(video("size=320x180:rate=30:duration=1"), stream_copy("-metadata:s:v:0", "rotate=90")),
        facts={"rotation": 90, "display_width": 180, "display_height": 320},
    ),
    Entry(
        "vfr.mp4",
        ffmpeg_clip(
            *("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2"),
            # 30 frames at 30 fps, then 30 at 15 fps.
            *("-vf", "setpts='if(lt(N,30),N/30/TB,(30+(N-30)*2)/30/TB)'", "-vsync", "vfr"),
            *("-c:v", "libx264", "-preset", "ultrafast"),
        ),
        facts={"vfr": True},
    ),
    Entry(
        "h264_10bit.mp4",
        video(SMALL, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le"),
        facts={"bit_depth": 10, "video_profile": "High 10", "chroma": "420", "hdr": False},
    ),
    Entry(
        "interlaced_tff.mp4",
        video(
            "size=320x240:rate=25:duration=1",
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-flags", "+ilme+ildct", "-top", "1", "-x264opts", "tff=1"),
        ),
        facts={"interlaced": True},
    ),
    Entry(
        "hevc_hdr10.mp4",
        video(
            SMALL,
            *("-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le"),
            *("-x265-params", "log-level=error", "-tag:v", "hvc1"),
            *("-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"),
        ),
        facts={"video_codec": "hevc", "bit_depth": 10, "hdr": True, "color_transfer": "smpte2084"},
    ),
    Entry(
        "odd_321x241.mp4",
        # x264 needs even sizes for 4:2:0; 4:4:4 takes any, as editors' exports sometimes do.
        video(
            SMALL,
            "-vf",
            "scale=321:241",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv444p",
        ),
        facts={"width": 321, "height": 241, "chroma": "444"},
    ),
    Entry(
        "fps60.mp4",
        video("size=320x240:rate=60:duration=1"),
        facts={"fps": 60.0, "vfr": False},
    ),
    # Refused: broken, not video, or outside the limits.
    Entry("empty.mp4", written(nothing), refused="empty_file"),
    Entry("truncated_half.mp4", then(with_audio(), cut_in_half), refused="corrupt"),
    Entry(
        "truncated_faststart.mp4",
        then(with_audio("-movflags", "+faststart"), cut_in_half),
        refused="corrupt",
    ),
    Entry("png_renamed.mp4", then(PNG_FRAME, renamed), refused="not_media"),
    Entry("notes.mp4", written(plain_notes), refused="not_media"),
    Entry("random_bytes.mp4", written(random_bytes), refused="not_media"),
    Entry(
        "audio_only.m4a",
        ffmpeg_clip("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"),
        refused="no_video_stream",
    ),
    Entry(
        "cover_art.m4a",
        ffmpeg_clip(
            *("-f", "lavfi", "-i", "sine=duration=1"),
            *("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=1:duration=1", "-frames:v", "1"),
            *("-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png"),
            *("-disposition:v:0", "attached_pic"),
        ),
        refused="no_video_stream",
    ),
    Entry("theora.mkv", video(SMALL, *THEORA), refused="unsupported_codec"),
    Entry("theora.ogv", video(SMALL, *THEORA), refused="unsupported_container"),
    Entry(
        "wide_8192x64.mp4",
        video("size=8192x64:rate=10:duration=0.5"),
        refused="dimensions_too_large",
    ),
    Entry("tiny_8x8.mp4", video("size=8x8:rate=10:duration=1"), refused="dimensions_too_small"),
    Entry("fps240.mp4", video("size=160x120:rate=240:duration=0.5"), refused="frame_rate_too_high"),
    Entry(
        "long_4h30.mp4",
        video("size=160x120:rate=1/600:duration=16200"),  # one frame every ten minutes
        refused="too_long",
    ),
    Entry("sparse_2gib.mp4", then(video(), grown_sparse), refused="too_large"),
    # Refused: files that point elsewhere. Nothing may open what they point at.
    Entry("hls_local.m3u8", written(hls_to_file), "references_external", references=True),
    Entry("hls_local.mp4", written(hls_to_file), "references_external", references=True),
    Entry("hls_url.mp4", written(hls_to_url), "references_external", references=True),
    Entry("ffconcat.mp4", written(ffconcat_to_file), "references_external", references=True),
    Entry("concat_list.txt", written(concat_list_to_file), "references_external", references=True),
    Entry("dash.mpd", written(dash_to_url), "references_external", references=True),
    Entry("stream.sdp", written(sdp_to_loopback), "references_external", references=True),
    Entry("notes_path.txt", written(notes_naming_a_file), "references_external", references=True),
    Entry("frame%03d.mp4", video(), refused="references_external"),
)


def make_corpus(
    folder: Path,
    *,
    targets: Targets = Targets(),
    ffmpeg_bin: str = "ffmpeg",
    entries: Sequence[Entry] = CORPUS,
) -> dict[str, Path]:
    """Write every entry into ``folder`` (created if needed); returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entry in entries:
        path = folder / entry.name
        entry.make(path, targets, ffmpeg_bin)
        paths[entry.name] = path
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--local-file", type=Path, default=Targets.local_file)
    parser.add_argument("--url", default=Targets.url)
    parser.add_argument("--ffmpeg", default="ffmpeg")
    args = parser.parse_args(argv)
    targets = Targets(local_file=args.local_file, url=args.url)
    for entry in CORPUS:
        expected = f"refused: {entry.refused}" if entry.refused else f"accepted {dict(entry.facts)}"
        make_corpus(args.out_dir, targets=targets, ffmpeg_bin=args.ffmpeg, entries=[entry])
        print(f"{entry.name:28} {expected}")  # noqa: T201 - a command-line tool's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
