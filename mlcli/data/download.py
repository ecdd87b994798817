"""Optional download of the public image datasets into a cache folder, verified by SHA-256.

`fetch(url, dest, sha256=...)` downloads one file with `urllib`: bytes go to `dest + ".part"`, an interrupted
download resumes with an HTTP `Range` request (a server answering 200 instead of 206 restarts it cleanly),
network failures are retried with exponential backoff, and only a file whose SHA-256 matches is moved into
place with `os.replace`. A checksum mismatch removes the partial file and raises `DataError`.

`download_dataset(name, cache_dir)` fetches the files listed for `name` in `KNOWN_FILES` (official URLs and
their published SHA-256) and unpacks archives with `extract_tar`, which refuses absolute paths, `..` and
links.
The result is a folder that `mlcli.data.images.load_mnist` / `load_cifar10` read directly.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mlcli.errors import ConfigError, DataError

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class KnownFile:
    """A file of a known dataset: its name in the cache, mirrors tried in order, SHA-256, size in bytes, and
    for an archive the folder it unpacks into."""

    name: str
    urls: tuple[str, ...]
    sha256: str
    size: int
    extracts_to: str | None = None


def _idx_files(urls: tuple[str, ...], sums: dict[str, tuple[str, int]]) -> tuple[KnownFile, ...]:
    return tuple(KnownFile(name, tuple(u + name for u in urls), sha, size)
                 for name, (sha, size) in sums.items())


# Official URLs (plus the mirrors torchvision / Keras use), with the SHA-256 and sizes that torchvision,
# TensorFlow Datasets and other independent loaders publish for them.
KNOWN_FILES: dict[str, tuple[KnownFile, ...]] = {
    "mnist": _idx_files(
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"),
        {
            "train-images-idx3-ubyte.gz":
                ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "train-labels-idx1-ubyte.gz":
                ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "t10k-images-idx3-ubyte.gz":
                ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "t10k-labels-idx1-ubyte.gz":
                ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        },
    ),
    "fashion_mnist": _idx_files(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        {
            "train-images-idx3-ubyte.gz":
                ("08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc", 26421880),
            "train-labels-idx1-ubyte.gz":
                ("b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc", 29515),
            "t10k-images-idx3-ubyte.gz":
                ("78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229", 4422102),
            "t10k-labels-idx1-ubyte.gz":
                ("42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf", 5148),
        },
    ),
    "cifar10": (
        KnownFile(
            "cifar-10-binary.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            170052171,
            extracts_to="cifar-10-batches-bin",
        ),
    ),
}


class _RetryableError(Exception):
    """A failed attempt worth retrying (network error, timeout, 5xx, short body)."""


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str,
    retries: int = 3,
    timeout: float = 30,
    progress: bool = True,
    backoff: float = 1.0,
    max_bytes: int | None = None,
) -> Path:
    """Download `url` to `dest` and return `dest`, once its SHA-256 equals `sha256`.

    An existing `dest` with the right hash is returned without any request. Bytes are written to
    `dest.part`; if that exists the request asks for `Range: bytes=<size>-` and appends on 206 (on 200 the
    server ignored the range and the file is rewritten from the start). A network error, timeout, HTTP 5xx or
    short body is retried up to `retries` more times after sleeping `backoff * 2**attempt` seconds, keeping
    the partial file for the next attempt; HTTP 4xx fails at once. `max_bytes` caps the download size. The
    progress bar shows only when `progress` is true and stderr is a terminal.
    """
    dest = Path(dest)
    expected = sha256.lower()
    if dest.is_file() and _sha256_file(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = progress and sys.stderr.isatty()
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _download_once(url, part, timeout=timeout, show=show, max_bytes=max_bytes)
            break
        except _RetryableError as exc:
            last_error = str(exc)
    else:
        raise DataError(
            f"{url}: download failed after {retries + 1} attempts: {last_error}; the partial file {part} is "
            "kept and the next run resumes it"
        )
    actual = _sha256_file(part)
    if actual != expected:
        part.unlink()
        raise DataError(
            f"{url}: checksum mismatch for {dest.name}: expected sha256 {expected}, got {actual}; "
            "the partial file was removed"
        )
    os.replace(part, dest)
    return dest


def download_dataset(name: str, cache_dir: str | Path, *, progress: bool = True) -> Path:
    """Download (and unpack) the dataset `name` of `KNOWN_FILES` into `cache_dir`; return its data folder.

    "mnist" / "fashion_mnist" -> `cache_dir` itself, holding the four `.gz` IDX files (so give each its own
    folder); "cifar10" -> `cache_dir/cifar-10-batches-bin`. Files already verified are not fetched again, and
    an archive whose extraction was recorded (`<archive>.extracted` holding its SHA-256) is not fetched or
    unpacked again. Each file's mirrors are tried in order; the last failure is raised when all of them fail.
    """
    if name not in KNOWN_FILES:
        raise ConfigError(f"unknown dataset {name!r} to download; known: {', '.join(sorted(KNOWN_FILES))}")
    cache_dir = Path(cache_dir)
    target = cache_dir
    for known in KNOWN_FILES[name]:
        marker = cache_dir / f"{known.name}.extracted"
        if known.extracts_to is not None:
            target = cache_dir / known.extracts_to
            if marker.is_file() and marker.read_text().strip() == known.sha256 and target.is_dir():
                continue
        dest = cache_dir / known.name
        error: DataError | None = None
        for url in known.urls:
            try:
                fetch(url, dest, sha256=known.sha256, progress=progress, max_bytes=known.size)
                error = None
                break
            except DataError as exc:
                error = exc
        if error is not None:
            raise error
        if known.extracts_to is not None:
            extract_tar(dest, cache_dir)
            marker.write_text(known.sha256 + "\n")
    return target


def extract_tar(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a (gzipped) tar `archive` into `dest`; return the top-level folder it created (or `dest`).

    Uses tarfile's "data" filter (nothing outside `dest`, no device files, sane permissions) and also refuses
    absolute member names and every symbolic or hard link. A refused or corrupt member raises `DataError`
    naming it.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tops = {Path(m.name).parts[0] for m in tar.getmembers() if Path(m.name).parts}
            tar.extractall(dest, filter=_no_links_data_filter)
    except tarfile.FilterError as exc:
        raise DataError(f"{archive}: refusing to extract: {exc}") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: cannot extract: {exc}") from exc
    return dest / tops.pop() if len(tops) == 1 else dest


def _no_links_data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    if member.issym() or member.islnk():
        raise _LinkRefused(member)
    if os.path.isabs(member.name):  # the data filter would strip the "/"; a dataset archive never has one
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, path)


class _LinkRefused(tarfile.FilterError):
    """tarfile has no error for 'links refused altogether'; this is it."""

    def __init__(self, tarinfo: tarfile.TarInfo) -> None:
        self.tarinfo = tarinfo
        super().__init__(f"{tarinfo.name!r} links to {tarinfo.linkname!r}; links are not allowed")


def _download_once(url: str, part: Path, *, timeout: float, show: bool, max_bytes: int | None) -> None:
    """One attempt: request the bytes `part` lacks and append them; _RetryableError if worth retrying."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_range = response.headers.get("Content-Range", "")
            if response.status == 206 and content_range.startswith(f"bytes {offset}-"):
                mode = "ab"
            else:
                offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            if max_bytes is not None and total is not None and total > max_bytes:
                raise DataError(f"{url}: server announces {total} bytes, more than the expected {max_bytes}")
            written = offset
            with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                               desc=part.name[: -len(".part")], disable=not show) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
                    if max_bytes is not None and written > max_bytes:
                        break
            if max_bytes is not None and written > max_bytes:
                part.unlink()
                raise DataError(
                    f"{url}: download exceeds the expected {max_bytes} bytes; the partial file was removed"
                )
            if total is not None and written < total:
                raise _RetryableError(f"connection closed after {written} of {total} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the partial file is already complete; the checksum decides
        if exc.code >= 500:
            raise _RetryableError(f"HTTP {exc.code} {exc.reason}") from exc
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _RetryableError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
