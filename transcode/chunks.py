"""Long sources: split at keyframes, encode each chunk in its own task, join without re-encoding.

A source longer than ``settings.chunk_threshold_s`` is stream-copied into chunks of about
``settings.chunk_length_s`` (cuts land on the source's keyframes, so lengths vary). Each chunk
is encoded by one ffmpeg process with the very filters and x264 options of the one-process
ladder (:func:`transcode.commands.ladder_video_args`), one plain MP4 per rung. The join then
concatenates each rung's chunk files (stream copy), encodes the audio once from the original
source, and writes the same fMP4 HLS layout as :func:`transcode.commands.hls_command`.

Workers may run on different machines, so everything between the steps goes through the
object store under :func:`work_prefix`: ``job.json`` (what every step needs), the chunks and
the encoded rungs. Command builders are pure; the runners below are thin.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from core.storage import ObjectStore
from transcode.commands import (
    FORMAT_WHITELIST,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    PROTOCOL_WHITELIST,
    HlsOptions,
    hls_output_args,
    ladder_video_args,
    variant_dir,
)
from transcode.errors import TranscodeError
from transcode.ladder import Rendition, Rung
from transcode.master import VideoRung, video_codecs
from transcode.playlists import parse_master
from transcode.probe import ProbeResult
from transcode.runner import ProgressCallback, run_ffmpeg

JOB_FILE = "job.json"
# The joined ladder's folder under the output root: the one-process ladder step's
# (transcode.steps.LADDER_DIR), so a publisher treats both the same.
LADDER_DIR = "ladder"
CHUNK_PREFIX = "chunk_"
# Enough for 33 hours at 120 s a chunk; a chord with more header tasks strains the broker.
MAX_CHUNKS = 1000
MIN_CHUNK_S = 1
# The concat lists and the files they name are written by us (never by a partner), so the
# concat demuxer is allowed for them, but only to open our encoded MP4 chunk outputs.
CONCAT_FORMAT_WHITELIST = "concat,mov,mp4,m4a,3gp,3g2,mj2"
# Chunks keep the source's codec (stream copy). MOV keeps the display matrix (phone
# rotation), which ffmpeg 5.1's Matroska muxer drops; it cannot hold VP8/VP9/AV1, which come
# from the WebM world, where rotation is not stored that way anyway.
_MATROSKA_CODECS = frozenset({"vp8", "vp9", "av1"})
_QUIET = ("-hide_banner", "-nostdin", "-loglevel", "error")
_PROGRESS = ("-progress", "pipe:1", "-nostats")


class ChunkingFailed(TranscodeError):
    """A chunked attempt cannot go on (no chunks came out, too many, or some are missing)."""

    code = "chunking_failed"


def chunk_suffix(video_codec: str) -> str:
    """The container for stream-copied chunks of a source with this video codec."""
    return ".mkv" if video_codec in _MATROSKA_CODECS else ".mov"


def split_command(
    ffmpeg_bin: str, source: Path, out_dir: Path, *, chunk_s: int, suffix: str = ".mov"
) -> list[str]:
    """ffmpeg argv stream-copying the first video stream into ``out_dir/chunk_<n><suffix>``.

    The segment muxer cuts at the first keyframe at or after each multiple of ``chunk_s``, and
    every chunk restarts its timestamps at 0, so each decodes on its own.
    """
    if chunk_s < MIN_CHUNK_S:
        raise ValueError(f"chunk_s must be at least {MIN_CHUNK_S} (got {chunk_s})")
    if suffix not in (".mov", ".mkv"):
        raise ValueError(f"chunks are .mov or .mkv files (got {suffix!r})")
    if "%" in str(out_dir):
        raise ValueError("out_dir must not contain '%': the segment muxer reads it as a pattern")
    return [
        *(ffmpeg_bin, *_QUIET, "-y", *_PROGRESS),
        *("-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", FORMAT_WHITELIST),
        *("-i", _local(source), "-map", "0:v:0", "-c", "copy"),
        *("-f", "segment", "-segment_time", str(chunk_s), "-reset_timestamps", "1"),
        _local(out_dir / f"{CHUNK_PREFIX}%05d{suffix}"),
    ]


def split_source(
    source: Path,
    out_dir: Path,
    *,
    ffmpeg_bin: str,
    chunk_s: int,
    timeout_s: float,
    suffix: str = ".mov",
    duration_s: float | None = None,
) -> list[Path]:
    """Split ``source`` (see :func:`split_command`); the chunk files in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = split_command(ffmpeg_bin, source, out_dir, chunk_s=chunk_s, suffix=suffix)
    run_ffmpeg(argv, timeout_s=timeout_s, duration_s=duration_s)
    chunks = sorted(out_dir.glob(f"{CHUNK_PREFIX}*{suffix}"))
    if not chunks:
        raise ChunkingFailed("Splitting the video produced no chunks.")
    if len(chunks) > MAX_CHUNKS:
        raise ChunkingFailed(
            f"Splitting the video produced {len(chunks)} chunks (at most {MAX_CHUNKS})."
        )
    return chunks


def chunk_encode_command(
    ffmpeg_bin: str,
    chunk: Path,
    out_dir: Path,
    renditions: Sequence[Rendition],
    info: ProbeResult,
    options: HlsOptions,
) -> list[str]:
    """One decode of ``chunk``, split into every rendition, each to ``out_dir/r<i>.mp4``.

    Filters and x264 options are the one-process ladder's, so chunks joined end to end look
    (and switch) exactly like a ladder encoded in one go. ``info`` describes the whole source.
    """
    if not renditions:
        raise ValueError("at least one rendition is needed")
    chunk_input = ffmpeg.input(
        _local(chunk), protocol_whitelist=PROTOCOL_WHITELIST, format_whitelist=FORMAT_WHITELIST
    )
    branches, video_options = ladder_video_args(chunk_input, renditions, info, options)
    outputs = [
        ffmpeg.output(
            branch,
            _local(rung_file(out_dir, index)),
            **stream_options(video_options, index),
            map_metadata=-1,
        )
        for index, branch in enumerate(branches)
    ]
    merged = ffmpeg.merge_outputs(*outputs).global_args(*_QUIET, *_PROGRESS)
    return list(merged.overwrite_output().compile(cmd=ffmpeg_bin))


def stream_options(options: dict[str, Any], index: int) -> dict[str, Any]:
    """The options of stream ``v:<index>`` of a multi-stream output, for an output of its own:
    ``b:v:<index>`` becomes ``b:v``, other streams' options are dropped, shared ones kept."""
    own: dict[str, Any] = {}
    for key, value in options.items():
        head, _, tail = key.rpartition(":")
        if not (tail.isdigit() and head.endswith(":v")):
            own[key] = value
        elif int(tail) == index:
            own[head] = value
    return own


def rung_file(out_dir: Path, index: int) -> Path:
    """Where :func:`chunk_encode_command` writes rendition ``index``."""
    return out_dir / f"r{index}.mp4"


def encode_chunk(
    chunk: Path,
    out_dir: Path,
    renditions: Sequence[Rendition],
    info: ProbeResult,
    *,
    ffmpeg_bin: str,
    timeout_s: float,
    options: HlsOptions,
    on_progress: ProgressCallback | None = None,
    duration_s: float | None = None,
) -> list[Path]:
    """Encode one chunk into every rendition; the rung files in rendition order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = chunk_encode_command(ffmpeg_bin, chunk, out_dir, renditions, info, options)
    run_ffmpeg(argv, timeout_s=timeout_s, duration_s=duration_s, on_progress=on_progress)
    return [rung_file(out_dir, index) for index in range(len(renditions))]


def join_command(
    ffmpeg_bin: str,
    rung_lists: Sequence[Path],
    out_dir: Path,
    *,
    audio_source: Path | None,
    options: HlsOptions,
) -> list[str]:
    """One ffmpeg process: each rung's chunks concatenated (stream copy) into fMP4 HLS.

    ``rung_lists[i]`` is a concat list (see :func:`write_concat_list`) of rung ``i``'s chunk
    files. The concat demuxer is refused for uploads everywhere else; here it is safe because
    the lists are written by :func:`join_chunks` and name only files our own encoder wrote in
    our own work directory, never anything from a partner, and it stays fenced: the ``file``
    protocol only, and only the concat and MP4 demuxers (whitelists pass to the files it opens).
    The audio is encoded once from ``audio_source`` (the original upload, first audio stream,
    stereo AAC), with the usual whitelists. Same layout as ``hls_command``: ``v<i>/index.m3u8``,
    audio last, ``master.m3u8`` by ffmpeg (for its CODECS).
    """
    if not rung_lists:
        raise ValueError("at least one rung is needed")
    if "%" in str(out_dir):
        raise ValueError("out_dir must not contain '%': the HLS muxer reads it as a pattern")
    streams = [_concat_input(rung_list)["v:0"] for rung_list in rung_lists]
    if audio_source is not None:
        source = ffmpeg.input(
            _local(audio_source),
            vn=None,  # only its sound is used: its picture is never decoded
            protocol_whitelist=PROTOCOL_WHITELIST,
            format_whitelist=FORMAT_WHITELIST,
        )
        streams.append(source["a:0"])
    out = ffmpeg.output(
        *streams,
        _local(out_dir / "v%v" / MEDIA_PLAYLIST),
        **{"c:v": "copy"},
        **hls_output_args(out_dir, len(rung_lists), audio_source is not None, options),
        map_metadata=-1,
    )
    out = out.global_args(*_QUIET, *_PROGRESS)
    return list(out.overwrite_output().compile(cmd=ffmpeg_bin))


def _concat_input(rung_list: Path) -> Any:
    return ffmpeg.input(
        _local(rung_list),
        f="concat",
        safe=0,  # our lists name absolute paths of our own files (see join_command)
        protocol_whitelist=PROTOCOL_WHITELIST,
        format_whitelist=CONCAT_FORMAT_WHITELIST,
    )


def write_concat_list(path: Path, files: Sequence[Path]) -> Path:
    """Write a concat demuxer list naming ``files`` (absolute paths, quoted) in order."""
    lines = ["ffconcat version 1.0"]
    for file in files:
        name = _local(file)
        if any(char in name for char in "\r\n\0"):
            raise ValueError(f"a chunk path cannot go in a concat list: {name!r}")
        lines.append("file '" + name.replace("'", "'\\''") + "'")
    path.write_text("\n".join(lines) + "\n")
    return path


def join_chunks(
    encoded: Sequence[Sequence[Path]],
    work_dir: Path,
    out_dir: Path,
    *,
    audio_source: Path | None,
    ffmpeg_bin: str,
    timeout_s: float,
    options: HlsOptions,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Join ``encoded[chunk][rung]`` files into HLS under ``out_dir`` (lists in ``work_dir``)."""
    if not encoded or any(len(files) != len(encoded[0]) for files in encoded):
        raise ValueError("every chunk needs the same number of rung files")
    work_dir.mkdir(parents=True, exist_ok=True)
    lists = [
        write_concat_list(work_dir / f"list_{rung}.txt", [files[rung] for files in encoded])
        for rung in range(len(encoded[0]))
    ]
    argv = join_command(ffmpeg_bin, lists, out_dir, audio_source=audio_source, options=options)
    run_ffmpeg(argv, timeout_s=timeout_s, duration_s=duration_s, on_progress=on_progress)


# --- one chunked attempt, through the object store -------------------------------------------


@dataclass(frozen=True)
class ChunkJob:
    """What every task of one chunked attempt needs; stored as ``job.json`` beside the chunks.

    ``kept_rungs``/``kept_audio`` are what the attempt already published (a stream-copied top
    rung and its audio, playlists relative to the output root) and the final master keeps;
    ``with_audio`` is whether the join encodes the audio (not when ``kept_audio`` has it);
    ``poster``/``storyboard`` are thumbnails already stored, for the final publication.
    All paths are relative to the attempt's output root.
    """

    source_key: str
    info: ProbeResult
    renditions: tuple[Rendition, ...]
    options: HlsOptions
    with_audio: bool
    chunk_keys: tuple[str, ...] = ()
    kept_rungs: tuple[VideoRung, ...] = ()
    kept_audio: str | None = None
    poster: str | None = None
    storyboard: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChunkJob:
        data = json.loads(text)
        return cls(
            source_key=data["source_key"],
            info=ProbeResult(**data["info"]),
            renditions=tuple(_rendition(item) for item in data["renditions"]),
            options=HlsOptions(**data["options"]),
            with_audio=bool(data["with_audio"]),
            chunk_keys=tuple(data["chunk_keys"]),
            kept_rungs=tuple(VideoRung(**item) for item in data["kept_rungs"]),
            kept_audio=data["kept_audio"],
            poster=data["poster"],
            storyboard=data["storyboard"],
        )


def _rendition(data: dict[str, Any]) -> Rendition:
    return Rendition(**{**data, "rung": Rung(**data["rung"])})


@dataclass(frozen=True)
class Joined:
    """A joined ladder on local disk, described like ``transcode.steps.StepOutput``: rungs
    and the audio playlist relative to ``root``, ``files`` in upload order (media first)."""

    job: ChunkJob
    root: Path
    rungs: list[VideoRung]
    audio_playlist: str | None
    files: list[str]


# What the task layer gives the join to publish the result (the final master and ``ready``).
PublishJoined = Callable[[Joined], None]


def work_prefix(asset_id: str, attempt: int) -> str:
    """Where one attempt's working objects live (removed once the attempt is published)."""
    return f"work/{asset_id}/{attempt}"


def encoded_key(prefix: str, index: int, rung: int) -> str:
    return f"{prefix}/enc/{index:05d}/r{rung}.mp4"


def split_and_upload(
    store: ObjectStore,
    prefix: str,
    source: Path,
    tmp: Path,
    job: ChunkJob,
    *,
    ffmpeg_bin: str,
    chunk_s: int,
    timeout_s: float,
) -> ChunkJob:
    """Split ``source`` into chunks, store them and ``job.json`` (with their keys) under
    ``prefix``; returns the stored job (``len(job.chunk_keys)`` chunk tasks to start)."""
    suffix = chunk_suffix(job.info.video_codec)
    chunks = split_source(
        source,
        tmp / "chunks",
        ffmpeg_bin=ffmpeg_bin,
        chunk_s=chunk_s,
        timeout_s=timeout_s,
        suffix=suffix,
        duration_s=job.info.duration_s,
    )
    keys = tuple(f"{prefix}/chunks/{index:05d}{suffix}" for index in range(len(chunks)))
    for key, chunk in zip(keys, chunks, strict=True):
        store.put_file(key, chunk)
    stored = dataclasses.replace(job, chunk_keys=keys)
    # Written last: a job file means every chunk it names is stored.
    store.put_bytes(f"{prefix}/{JOB_FILE}", stored.to_json().encode())
    return stored


def load_job(store: ObjectStore, prefix: str) -> ChunkJob:
    """The job stored by :func:`split_and_upload`."""
    return ChunkJob.from_json(store.get_bytes(f"{prefix}/{JOB_FILE}").decode())


def encode_stored_chunk(
    store: ObjectStore, prefix: str, index: int, tmp: Path, *, ffmpeg_bin: str, timeout_s: float
) -> list[str]:
    """Encode stored chunk ``index`` into every rung; the keys of the stored rung files."""
    job = load_job(store, prefix)
    if not 0 <= index < len(job.chunk_keys):
        raise ChunkingFailed(f"There is no chunk {index} (the job has {len(job.chunk_keys)}).")
    chunk = tmp / Path(job.chunk_keys[index]).name
    store.download_file(job.chunk_keys[index], chunk)
    files = encode_chunk(
        chunk,
        tmp / "enc",
        job.renditions,
        job.info,
        ffmpeg_bin=ffmpeg_bin,
        timeout_s=timeout_s,
        options=job.options,
    )
    keys = [encoded_key(prefix, index, rung) for rung in range(len(files))]
    for key, file in zip(keys, files, strict=True):
        store.put_file(key, file)
    return keys


def join_stored_chunks(
    store: ObjectStore,
    prefix: str,
    tmp: Path,
    *,
    ffmpeg_bin: str,
    timeout_s: float,
    on_progress: ProgressCallback | None = None,
) -> Joined:
    """Download every encoded chunk (and the source, for its audio), join them under
    ``tmp/out/ladder/`` and describe the result as the one-process ladder step would."""
    job = load_job(store, prefix)
    encoded = [
        _download_encoded(store, prefix, index, job, tmp) for index in range(len(job.chunk_keys))
    ]
    audio_source = None
    if job.with_audio and job.info.has_audio:
        audio_source = tmp / "source"
        store.download_file(job.source_key, audio_source)
    root = tmp / "out"
    join_chunks(
        encoded,
        tmp / "lists",
        root / LADDER_DIR,
        audio_source=audio_source,
        ffmpeg_bin=ffmpeg_bin,
        timeout_s=timeout_s,
        options=job.options,
        duration_s=job.info.duration_s,
        on_progress=on_progress,
    )
    rungs = _joined_rungs(root / LADDER_DIR, job.renditions)
    audio = f"{LADDER_DIR}/{variant_dir(len(rungs))}/{MEDIA_PLAYLIST}" if audio_source else None
    return Joined(job, root, rungs, audio, upload_order(root, LADDER_DIR))


def _download_encoded(
    store: ObjectStore, prefix: str, index: int, job: ChunkJob, tmp: Path
) -> list[Path]:
    folder = tmp / "enc" / f"{index:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for rung in range(len(job.renditions)):
        path = rung_file(folder, rung)
        store.download_file(encoded_key(prefix, index, rung), path)
        files.append(path)
    return files


def _joined_rungs(out: Path, renditions: Sequence[Rendition]) -> list[VideoRung]:
    """The joined rungs, with the CODECS ffmpeg's master measured from the bitstream."""
    codecs = {
        variant.uri: variant.attributes.get("CODECS", "")
        for variant in parse_master((out / MASTER_PLAYLIST).read_text())
    }
    rungs = []
    for index, rendition in enumerate(renditions):
        playlist = f"{variant_dir(index)}/{MEDIA_PLAYLIST}"
        rungs.append(
            VideoRung(
                name=rendition.rung.name,
                playlist=f"{LADDER_DIR}/{playlist}",
                width=rendition.width,
                height=rendition.height,
                codecs=video_codecs(codecs.get(playlist, "")),
                frame_rate=rendition.fps,
            )
        )
    return rungs


def upload_order(root: Path, subdir: str) -> list[str]:
    """Files under ``root/subdir`` relative to ``root``: media first, then media playlists;
    ffmpeg's master is left out (the publisher writes the one fans get, last)."""
    paths = [p for p in (root / subdir).rglob("*") if p.is_file()]
    files = [p.relative_to(root).as_posix() for p in paths if p.name != MASTER_PLAYLIST]
    return sorted(files, key=lambda name: (name.endswith(".m3u8"), name))


def _local(path: Path) -> str:
    """An absolute path: never read as an option (``-x``) or a protocol (``concat:...``)."""
    return str(path.absolute())
