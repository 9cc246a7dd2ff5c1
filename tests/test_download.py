"""Downloads against a local HTTP server: success, atomic write, MD5 mismatch, truncation, stalls.

Every test runs the real code path (``urllib`` with a timeout, ``.part`` file, MD5, ``os.replace``)
against ``http.server`` on 127.0.0.1. Stalls use a 1 s timeout and a thread guard (``no_hang``),
so nothing can hang the suite.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import cae_lib.data.checksums as checksums_mod
from cae_lib.data import (
    ChecksumError,
    CorruptFileError,
    DatasetFallbackWarning,
    DatasetInfo,
    DatasetUnavailableError,
    DownloadError,
    download_file,
    ensure_file,
    get_info,
    load_dataset,
)


# --------------------------------------------------------------------------------------------
# A local server whose behaviour is chosen per path
# --------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def _headers(self, length: int, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        kind, body = self.server.routes.get(self.path.split("?")[0], ("status", b""))
        srv = self.server
        srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
        if kind == "ok":
            self._headers(len(body))
            self.wfile.write(body)
        elif kind == "truncate":  # announce everything, send half, hang up
            self._headers(len(body))
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
        elif kind == "stall_after_headers":  # headers and a few bytes, then silence
            self._headers(len(body))
            self.wfile.write(body[:100])
            self.wfile.flush()
            srv.release.wait(20)
        elif kind == "stall_before_headers":  # accept the connection, say nothing
            srv.release.wait(20)
        elif kind == "staged":  # half, then wait until the test says go
            self._headers(len(body))
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            srv.half_sent.set()
            srv.proceed.wait(20)
            self.wfile.write(body[len(body) // 2 :])
        else:
            self.send_error(404, "Not Found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        self.half_sent = threading.Event()
        self.proceed = threading.Event()

    def serve(self, path: str, kind: str, body: bytes = b"") -> str:
        """Register a behaviour for ``path``; return its URL."""
        self.routes[path] = (kind, body)
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.proceed.set()
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def payload(tmp_path_factory: pytest.TempPathFactory, tiny_rgb_npz) -> tuple[bytes, str]:
    """A small RGB MedMNIST-layout npz (bytes) and its MD5 (written outside ``tmp_path``)."""
    path = tiny_rgb_npz(tmp_path_factory.mktemp("payload") / "payload.npz", n=(24, 8, 8), n_classes=8)
    data = path.read_bytes()
    return data, hashlib.md5(data).hexdigest()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/bloodmnist.npz"  # nothing listens there: connection refused


def _mirror(url: str, md5: str) -> DatasetInfo:
    """BloodMNIST's registry entry, pointed at a test URL (the same object load_dataset uses)."""
    return dataclasses.replace(get_info("bloodmnist"), urls={28: url}, md5s={28: md5}, sizes=(28,))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------------
# download_file
# --------------------------------------------------------------------------------------------
def test_download_success(server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang) -> None:
    body, md5 = payload
    dest = tmp_path / "data" / "x.npz"
    out = no_hang(download_file, server.serve("/x.npz", "ok", body), dest, md5, timeout=5, progress=False)
    assert out == dest and dest.read_bytes() == body
    assert _files(dest.parent) == ["x.npz"]  # no .part left
    # with a progress bar (tqdm), over an existing file
    no_hang(download_file, server.serve("/x.npz", "ok", body), dest, md5, timeout=5, progress=True)
    assert dest.read_bytes() == body and _files(dest.parent) == ["x.npz"]


def test_download_is_atomic(server: _Server, payload: tuple[bytes, str], tmp_path: Path) -> None:
    """Mid-transfer only the .part exists; the final name appears after the MD5 check."""
    body, md5 = payload
    url = server.serve("/staged.npz", "staged", body)
    dest = tmp_path / "staged.npz"
    box: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: box.setdefault("out", download_file(url, dest, md5, timeout=5, progress=False)), daemon=True
    )
    worker.start()
    assert server.half_sent.wait(5)
    deadline = time.monotonic() + 5
    parts: list[Path] = []
    while not (parts and parts[0].stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.01)
        parts = list(tmp_path.glob("staged.npz.*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(body)  # bytes arriving in the .part ...
    assert not dest.exists()  # ... while the final name does not exist yet
    server.proceed.set()
    worker.join(5)
    assert not worker.is_alive() and box["out"] == dest
    assert dest.read_bytes() == body and _files(tmp_path) == ["staged.npz"]  # .part renamed away


def test_md5_mismatch_leaves_nothing(server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang) -> None:
    body, md5 = payload
    url = server.serve("/wrong.npz", "ok", body[:-10] + b"0123456789")
    with pytest.raises(ChecksumError) as exc:
        no_hang(download_file, url, tmp_path / "wrong.npz", md5, timeout=5, progress=False)
    msg = str(exc.value)
    assert md5 in msg and exc.value.actual in msg and exc.value.expected == md5
    assert _files(tmp_path) == []


def test_truncated_transfer_leaves_nothing(server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang) -> None:
    body, md5 = payload
    url = server.serve("/cut.npz", "truncate", body)
    with pytest.raises(DownloadError, match="cut short"):
        no_hang(download_file, url, tmp_path / "cut.npz", md5, timeout=5, progress=False)
    assert _files(tmp_path) == []
    # even without an MD5 to catch it, a short transfer is never kept
    with pytest.raises(DownloadError, match="cut short"):
        no_hang(download_file, url, tmp_path / "cut.npz", None, timeout=5, progress=False)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("kind", ["stall_after_headers", "stall_before_headers"])
def test_stalled_server_times_out(kind: str, server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang) -> None:
    body, md5 = payload
    url = server.serve("/stall.npz", kind, body)
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"stalled|timed out"):
        no_hang(download_file, url, tmp_path / "stall.npz", md5, timeout=1, progress=False, limit=10)
    assert time.monotonic() - start < 5
    assert _files(tmp_path) == []


def test_http_error_and_refused_connection(server: _Server, tmp_path: Path, no_hang) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        no_hang(download_file, server.serve("/missing", "status"), tmp_path / "a.npz", None, timeout=5, progress=False)
    with pytest.raises(DownloadError, match="failed"):
        no_hang(download_file, _closed_port_url(), tmp_path / "b.npz", None, timeout=5, progress=False)
    assert _files(tmp_path) == []


def test_a_full_disk_says_so_and_keeps_nothing(server: _Server, payload: tuple[bytes, str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, no_hang) -> None:
    """The disk is full when the bytes arrive. Before: "Download of ... failed: [Errno 28] No space left
    on device." Now the message says the disk is full, how much is free, and where else the data can go."""
    import errno

    import cae_lib.data.download as download_mod

    class FullDisk:  # the .part file opens, but no write finds room, as on a full disk
        def __init__(self, path: Path, mode: str) -> None:
            self.file = open(path, mode)

        def write(self, chunk: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self) -> "FullDisk":
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    monkeypatch.setattr(download_mod, "open", FullDisk, raising=False)
    body, md5 = payload
    dest = tmp_path / "data" / "full.npz"
    with pytest.raises(DownloadError) as exc:
        no_hang(download_file, server.serve("/full.npz", "ok", body), dest, None, timeout=5, progress=False)
    msg = str(exc.value)
    assert f"the disk that holds {dest.parent} is full" in msg and " MB free" in msg
    assert "Nothing half-written was kept" in msg and "--data-dir, or the CAE_DATA_DIR variable" in msg
    assert not (tmp_path / "data").exists()  # no .part, and the folder this download made is gone again


# --------------------------------------------------------------------------------------------
# The load_dataset / ensure_file path
# --------------------------------------------------------------------------------------------
def test_load_dataset_downloads_verifies_and_stamps(
    server: _Server, payload: tuple[bytes, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hang
) -> None:
    body, md5 = payload
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    info = _mirror(server.serve("/bloodmnist.npz", "ok", body), md5)
    data_dir = tmp_path / "cache"
    data = no_hang(load_dataset, info, "train", data_dir=data_dir, timeout=5, progress=False)
    assert len(data) == 24 and data.n_channels == 3 and data.to_tensor([0, 1]).shape == (2, 3, 28, 28)
    assert data.source == str(data_dir / "bloodmnist.npz")
    # nothing but the data file in the data folder: the verification stamp lives in the toolkit's cache
    assert _files(data_dir) == ["bloodmnist.npz"]
    assert len(list((tmp_path / "xdg" / "cae_lib" / "verified").iterdir())) == 1
    # loading again neither downloads nor re-hashes: the stamp records the verified path, size and mtime
    monkeypatch.setattr(checksums_mod, "md5sum", lambda p: pytest.fail("re-hashed a verified file"))
    assert len(load_dataset(info, "test", data_dir=data_dir, progress=False)) == 8
    assert server.hits == {"/bloodmnist.npz": 1}


def test_load_dataset_md5_mismatch_raises_and_keeps_nothing(
    server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang
) -> None:
    body, _ = payload
    info = _mirror(server.serve("/bloodmnist.npz", "ok", body), "0" * 32)
    with pytest.raises(ChecksumError) as exc:
        no_hang(load_dataset, info, data_dir=tmp_path, timeout=5, progress=False)
    msg = str(exc.value)
    assert "0" * 32 in msg and hashlib.md5(body).hexdigest() in msg and "CAE_DATA_DIR" in msg
    assert _files(tmp_path) == []


def test_load_dataset_stall_gives_manual_steps_or_falls_back(
    server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang
) -> None:
    body, md5 = payload
    url = server.serve("/bloodmnist.npz", "stall_after_headers", body)
    info = _mirror(url, md5)
    with pytest.raises(DatasetUnavailableError) as exc:
        no_hang(load_dataset, info, data_dir=tmp_path, timeout=1, progress=False)
    msg = str(exc.value)
    for part in ("stalled", url, md5, str(tmp_path / "bloodmnist.npz"), "CAE_DATA_DIR", 'fallback="digits"'):
        assert part in msg
    assert _files(tmp_path) == []
    with pytest.warns(DatasetFallbackWarning, match="BloodMNIST is unavailable"):
        data = no_hang(load_dataset, info, "val", data_dir=tmp_path, timeout=0.5, progress=False, fallback="digits")
    assert data.name == "digits" and "stalled" in data.notice
    assert _files(tmp_path) == []


def test_a_data_folder_that_does_not_exist_is_named_as_a_likely_typo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hang) -> None:
    """Case: CAE_DATA_DIR=/nonexistent gave the download steps but never said that the folder was not there."""
    info = _mirror(_closed_port_url(), "0" * 32)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the toolkit's cache: not there yet
    monkeypatch.delenv("CAE_DATA_DIR", raising=False)
    with pytest.raises(DatasetUnavailableError, match="does not exist: a typo in CAE_DATA_DIR or --data-dir"):
        no_hang(load_dataset, info, data_dir=tmp_path / "typo" / "deeper", timeout=2, progress=False)
    assert not (tmp_path / "typo").exists()  # the failed download made no folders that stay behind
    with pytest.raises(DatasetUnavailableError) as exc:  # the toolkit's own cache may be missing: it is made on demand
        no_hang(load_dataset, info, timeout=2, progress=False)
    assert "could not be downloaded" in str(exc.value) and "typo" not in str(exc.value)


def test_offline_download_falls_back(tmp_path: Path, no_hang) -> None:
    info = _mirror(_closed_port_url(), "0" * 32)
    with pytest.warns(DatasetFallbackWarning):
        data = no_hang(load_dataset, info, data_dir=tmp_path, timeout=2, progress=False, fallback="digits")
    assert data.name == "digits" and data.n_classes == 10


def test_existing_bad_file_is_redownloaded_atomically(
    server: _Server, payload: tuple[bytes, str], tmp_path: Path, no_hang
) -> None:
    body, md5 = payload
    bad = tmp_path / "bloodmnist.npz"
    bad.write_bytes(body[: len(body) // 2] + b"x" * 200)  # a truncated earlier download
    info = _mirror(server.serve("/bloodmnist.npz", "ok", body), md5)
    data = no_hang(load_dataset, info, "test", data_dir=tmp_path, timeout=5, progress=False)
    assert len(data) == 8 and bad.read_bytes() == body
    assert _files(tmp_path) == ["bloodmnist.npz"]  # no stamp beside the data


def test_existing_bad_file_offline_raises_with_both_md5s(tmp_path: Path, payload: tuple[bytes, str], no_hang) -> None:
    body, md5 = payload
    bad = tmp_path / "bloodmnist.npz"
    bad.write_bytes(body[:-50] + b"y" * 50)
    info = _mirror(_closed_port_url(), md5)
    with pytest.raises(ChecksumError) as exc:
        no_hang(load_dataset, info, data_dir=tmp_path, timeout=2, progress=False)
    msg = str(exc.value)
    assert md5 in msg and hashlib.md5(bad.read_bytes()).hexdigest() in msg and "Re-downloading it failed" in msg
    assert "download=False" in msg
    assert _files(tmp_path) == ["bloodmnist.npz"]  # the user's file is left alone, no .part


def test_read_only_folder_is_never_written(tmp_path: Path, payload: tuple[bytes, str], server: _Server) -> None:
    body, md5 = payload
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "bloodmnist.npz").write_bytes(body)
    folder.chmod(0o555)
    try:
        url = server.serve("/bloodmnist.npz", "ok", body)
        # a good file verifies, and nothing is written into the folder (even when running as root)
        assert ensure_file(_mirror(url, md5), 28, folder, download=True, progress=False) == folder / "bloodmnist.npz"
        # a bad MD5 cannot be repaired in place: clear error, no download attempted
        with pytest.raises(ChecksumError, match="read-only"):
            ensure_file(_mirror(url, "0" * 32), 28, folder, download=True, progress=False)
        # a missing file cannot be downloaded into it
        other = dataclasses.replace(get_info("dermamnist"), urls={28: url}, md5s={28: md5}, sizes=(28,))
        with pytest.raises(DatasetUnavailableError, match="read-only"):
            ensure_file(other, 28, folder, download=True, progress=False)
        assert _files(folder) == ["bloodmnist.npz"] and server.hits == {}
    finally:
        folder.chmod(0o755)


def test_tiny_existing_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bloodmnist.npz").write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"0 bytes.*Delete it"):
        ensure_file(get_info("bloodmnist"), 28, tmp_path, download=False)


def test_download_false_trusts_existing_file_without_hashing(
    tmp_path: Path, payload: tuple[bytes, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body, _ = payload
    (tmp_path / "bloodmnist.npz").write_bytes(body)  # MD5 differs from the official file
    monkeypatch.setattr(checksums_mod, "md5sum", lambda p: pytest.fail("download=False must not hash"))
    data = load_dataset("bloodmnist", data_dir=tmp_path, download=False)
    assert data.images.shape == (24, 28, 28, 3)
    assert np.array_equal(np.bincount(data.labels), [3] * 8)
