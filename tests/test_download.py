"""Tests for the verified, resumable download and the safe archive extraction, against a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlcli.data import download
from mlcli.data.download import KNOWN_FILES, KnownFile, download_dataset, extract_tar, fetch
from mlcli.errors import ConfigError, DataError

DATA = bytes(range(256)) * 40  # 10240 bytes
SHA = hashlib.sha256(DATA).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves `server.files`; honours `Range: bytes=N-` unless `server.ignore_range`; can fail on purpose."""

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if srv.failures:
            mode = srv.failures.pop(0)
            if mode == "503":
                self.send_error(503, "busy")
            elif mode == "drop":
                self.close_connection = True  # no response at all
            elif mode == "slow":
                time.sleep(0.5)
            elif mode == "half":  # announce the whole body, send half, hang up
                body = srv.files[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
            return
        if self.path not in srv.files:
            self.send_error(404, "not found")
            return
        body = srv.files[self.path]
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_error(416, "range not satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files = {"/data.bin": DATA}
    srv.requests = []
    srv.failures = []
    srv.ignore_range = False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(server, dest: Path, **kwargs) -> Path:
    kwargs = {"sha256": SHA, "backoff": 0.01, "timeout": 5, "progress": False} | kwargs
    return fetch(f"{server.url}/data.bin", dest, **kwargs)


def test_fetch_downloads_verifies_and_leaves_no_part(server, tmp_path):
    dest = tmp_path / "sub" / "data.bin"
    assert get(server, dest) == dest
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    assert server.requests == [("/data.bin", None)]


def test_fetch_skips_request_when_dest_already_verified(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA)
    get(server, dest)
    assert server.requests == []


def test_fetch_resumes_partial_file_with_range_request(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA[:3000])
    get(server, dest)
    assert server.requests == [("/data.bin", "bytes=3000-")]
    assert dest.read_bytes() == DATA


def test_fetch_restarts_cleanly_when_server_ignores_range(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"garbage that must not stay in front")
    get(server, dest)
    assert server.requests == [("/data.bin", "bytes=35-")]
    assert dest.read_bytes() == DATA


def test_interrupted_body_is_retried_and_resumed(server, tmp_path):
    server.failures = ["half"]
    dest = tmp_path / "data.bin"
    get(server, dest)
    assert server.requests == [("/data.bin", None), ("/data.bin", f"bytes={len(DATA) // 2}-")]
    assert dest.read_bytes() == DATA


@pytest.mark.parametrize("mode", ["503", "drop", "slow"])
def test_fetch_retries_after_a_failing_request(server, tmp_path, mode):
    server.failures = [mode]
    dest = tmp_path / "data.bin"
    get(server, dest, timeout=0.2)
    assert len(server.requests) == 2
    assert dest.read_bytes() == DATA


def test_fetch_gives_up_after_retries_and_names_url(server, tmp_path):
    server.failures = ["503"] * 3
    with pytest.raises(DataError, match=r"/data\.bin: download failed after 3 attempts: HTTP 503"):
        get(server, tmp_path / "data.bin", retries=2)
    assert len(server.requests) == 3


def test_fetch_does_not_retry_client_errors(server, tmp_path):
    with pytest.raises(DataError, match=r"/missing\.bin: HTTP 404"):
        fetch(f"{server.url}/missing.bin", tmp_path / "m", sha256=SHA, backoff=0.01, progress=False)
    assert len(server.requests) == 1


def test_wrong_checksum_is_refused_and_partial_removed(server, tmp_path):
    dest = tmp_path / "data.bin"
    wrong = "0" * 64
    expected = rf"checksum mismatch for data\.bin: expected sha256 {wrong}, got {SHA}; the partial file was"
    with pytest.raises(DataError, match=expected):
        get(server, dest, sha256=wrong)
    assert not dest.exists() and not (tmp_path / "data.bin.part").exists()


def test_complete_part_answered_416_is_verified_and_kept(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA)
    get(server, dest)
    assert server.requests == [("/data.bin", f"bytes={len(DATA)}-")]
    assert dest.read_bytes() == DATA


def test_download_larger_than_max_bytes_is_refused(server, tmp_path):
    with pytest.raises(DataError, match=r"server announces 10240 bytes, more than the expected 100"):
        get(server, tmp_path / "data.bin", max_bytes=100)


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, payload in members:
            info.size = len(payload) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(payload) if info.isfile() else None)
    return buf.getvalue()


def file_member(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_extract_tar_unpacks_into_top_folder(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes([(file_member("top/x.txt"), b"hello"), (file_member("top/y.txt"), b"!")]))
    root = extract_tar(archive, tmp_path / "out")
    assert root == tmp_path / "out" / "top"
    assert (root / "x.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (file_member("../evil.txt"), r"refusing to extract: '\.\./evil\.txt' would be extracted .*outside"),
        (file_member("/abs/evil.txt"), r"refusing to extract: member '/abs/evil\.txt' has an absolute path"),
        (link_member("top/link", "x.txt"), r"refusing to extract: 'top/link' links to 'x\.txt'; links are"),
        (link_member("top/hard", "top/x.txt", tarfile.LNKTYPE), r"refusing to extract: 'top/hard' links to"),
    ],
)
def test_extract_tar_refuses_escapes_and_links(tmp_path, member, message):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(tar_bytes([(file_member("top/x.txt"), b"x"), (member, b"evil")]))
    with pytest.raises(DataError, match=rf"bad\.tar\.gz: {message}"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "top" / "link").exists()


def test_download_dataset_tries_mirrors_extracts_once_and_reuses(server, tmp_path, monkeypatch):
    blob = tar_bytes([(file_member("tiny-batches/test_batch.bin"), b"\x01" * 3073)])
    server.files["/tiny.tar.gz"] = blob
    known = KnownFile(
        "tiny.tar.gz",
        (f"{server.url}/gone/tiny.tar.gz", f"{server.url}/tiny.tar.gz"),
        hashlib.sha256(blob).hexdigest(),
        len(blob),
        extracts_to="tiny-batches",
    )
    monkeypatch.setitem(download.KNOWN_FILES, "tiny", (known,))
    root = download_dataset("tiny", tmp_path, progress=False)
    assert root == tmp_path / "tiny-batches"
    assert (root / "test_batch.bin").read_bytes() == b"\x01" * 3073
    assert [path for path, _ in server.requests] == ["/gone/tiny.tar.gz", "/tiny.tar.gz"]
    (tmp_path / "tiny.tar.gz").unlink()  # the extraction is recorded: no new request, no archive needed
    assert download_dataset("tiny", tmp_path, progress=False) == root
    assert len(server.requests) == 2


def test_download_dataset_idx_files_land_in_cache_dir(server, tmp_path, monkeypatch):
    known = KnownFile("data.bin", (f"{server.url}/data.bin",), SHA, len(DATA))
    monkeypatch.setitem(download.KNOWN_FILES, "plain", (known,))
    assert download_dataset("plain", tmp_path, progress=False) == tmp_path
    assert (tmp_path / "data.bin").read_bytes() == DATA


def test_download_dataset_unknown_name_lists_known():
    expected = r"unknown dataset 'imagenet' to download; known: cifar10, fashion_mnist, mnist"
    with pytest.raises(ConfigError, match=expected):
        download_dataset("imagenet", "/nonexistent")


def test_known_files_hold_official_names_and_full_sha256():
    idx_names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert [f.name for f in KNOWN_FILES["mnist"]] == idx_names
    assert [f.name for f in KNOWN_FILES["fashion_mnist"]] == idx_names
    assert KNOWN_FILES["cifar10"][0].urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",)
    for files in KNOWN_FILES.values():
        for f in files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0
            assert all(url.endswith("/" + f.name) for url in f.urls)
