"""Finding and downloading dataset files without ever hanging or leaving a half-written file.

Three rules, learned from the failures MedMNIST users keep reporting (Zenodo outages, downloads
that hang forever, truncated files that later crash a notebook):

1. **Time out, and stop what cannot be the file.** Every network read waits at most ``timeout``
   seconds for data (a server that stops sending, a *stall*, aborts the download), and the whole
   download has a deadline (:func:`download_deadline`), so a server that drips a byte at a time
   cannot hang the classroom either. A registry file also has a size limit (:func:`max_file_bytes`,
   from its image counts): a server that sends more (an endless stream) is stopped at once.
2. **Write atomically.** Bytes go to ``<file>.<random>.part`` (a name of its own, so two processes
   downloading the same file never write into one another's); only after the MD5 is verified is
   it renamed (``os.replace``, atomic on one filesystem) to the final name. On any failure the
   ``.part`` is deleted, so nothing that looks like good data is ever left behind.
3. **Explain the manual route.** When the file cannot be had, the error names the file, the official
   URL, its MD5, the folder to put it in, ``CAE_DATA_DIR`` and ``fallback="digits"``.

Where files live (:func:`resolve_data_dir`): the explicit ``data_dir`` argument, else the
``CAE_DATA_DIR`` environment variable, else ``$XDG_CACHE_HOME/cae_lib/medmnist`` (default
``~/.cache/cae_lib/medmnist``).

Trust rules for a file already on disk (:func:`ensure_file`):

- it must be more than a few bytes long (an empty file from a crashed tool is rejected);
- with ``download=True`` its MD5 must match the official one. The MD5 of a file is remembered in
  the toolkit's own cache (``$XDG_CACHE_HOME/cae_lib/verified``, keyed by the file's path, size
  and modification time: :func:`cached_md5`), so large files are not re-hashed on every load.
  Nothing is ever written next to your data, whether its folder is writable or not.
  A mismatching file is re-downloaded (to ``.part``, then replaced) or, if that fails, reported;
- with ``download=False`` the file is trusted as long as it opens and has the MedMNIST keys (checked
  when it is read). This is how you use your own copy, a mirror, or a small synthetic test file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from cae_lib.data.checksums import remember_md5, verify_md5
from cae_lib.data.errors import ChecksumError, CorruptFileError, DatasetUnavailableError, DownloadError
from cae_lib.data.paths import ENV_VAR, check_data_dir, default_cache_dir, is_writable_dir, resolve_data_dir
from cae_lib.files import disk_is_full, free_bytes
from cae_lib.utils import progress_bar

if TYPE_CHECKING:
    from cae_lib.data.registry import DatasetInfo

#: Files shorter than this cannot be a real dataset (an empty .npz is 22 bytes).
MIN_FILE_BYTES = 128
_CHUNK = 1 << 16


# --------------------------------------------------------------------------------------------
# Downloading one file
# --------------------------------------------------------------------------------------------
#: The slowest average rate a download may keep (50 KB/s, 0.4 Mbit/s): PneumoniaMNIST (4 MB) may take 80 s.
MIN_RATE_BYTES = 50_000
#: Seconds every download gets on top of its size at :data:`MIN_RATE_BYTES` (connecting, a slow start).
DEADLINE_GRACE_S = 60.0
#: The total deadline of a download when neither the caller nor the server says how large the file is.
DEFAULT_DEADLINE_S = 3600.0


def max_file_bytes(info: DatasetInfo, size: int) -> int:
    """The most bytes ``info``'s file at ``size`` px can take: its images uncompressed (from the registry's
    image counts), 16 label values of 8 bytes per image, and 1 % + 1 MiB for the archive's own headers.

    A download that grows past this is not that file (an endless stream, a wrong file) and is stopped.
    """
    n_images = sum(int(v) for v in info.n_samples.values())
    raw = n_images * (size * size * info.n_channels + 16 * 8)
    return int(raw * 1.01) + (1 << 20)


def download_deadline(n_bytes: int | None) -> float:
    """Seconds a whole download of ``n_bytes`` may take: :data:`DEADLINE_GRACE_S` plus the time at :data:`MIN_RATE_BYTES`."""
    return DEFAULT_DEADLINE_S if n_bytes is None else DEADLINE_GRACE_S + n_bytes / MIN_RATE_BYTES


class _Watchdog:
    """Shuts a download's connections down when its total deadline passes.

    A per-read timeout never fires for a server that drips a byte every few seconds, not even while
    it sends the headers (which ``urlopen`` reads before it returns). Shutting the socket down from
    this timer thread wakes the blocked read at once; ``fired`` then tells why the read failed.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                self._shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:  # the plain socket's shutdown, also under TLS (it leaves the TLS object to the reading thread)
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:  # already closed
            pass


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """A urllib opener whose HTTP(S) connections are shut down by ``watchdog`` at the deadline."""

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    class SecureConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(SecureConnection, req, context=self._context)

    return urllib.request.build_opener(Handler, SecureHandler)


def _too_slow(url: str, received: int, seconds: float, deadline: float) -> DownloadError:
    rate = received / max(seconds, 1e-9)
    return DownloadError(
        f"Download of {url} was too slow: {received:,} bytes in {seconds:.0f} s (about {rate / 1000:.1f} KB/s), and a download "
        f"must finish within {deadline:.0f} s (it must average at least {MIN_RATE_BYTES / 1000:g} KB/s). The server or the "
        "network is overloaded: try again later, or download the file by hand."
    )


def _too_big(url: str, n_bytes: int, max_bytes: int, announced: bool) -> DownloadError:
    what = f"announces {n_bytes:,} bytes" if announced else f"sent more than {n_bytes - 1:,} bytes"
    return DownloadError(
        f"Download of {url} was stopped: the server {what}, but this file can be at most {max_bytes:,} bytes, so it is "
        "not the dataset file (an endless stream or a wrong file). Nothing was kept; try again later, or download the "
        "file by hand."
    )


def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    max_bytes: int | None = None,
    deadline: float | None = None,
) -> Path:
    """Download ``url`` to ``dest`` safely: timeouts, a size limit, ``.part`` file, MD5 check, atomic rename.

    Args:
        url: where to fetch from (``http(s)://`` or ``file://``).
        dest: final path of the file. Its folder is created if needed.
        md5: expected MD5 hex digest; ``None`` skips the check (not recommended).
        timeout: seconds to wait for the connection and for *each* piece of data. If the server
            sends nothing for this long (a stall), the download is aborted.
        progress: show a tqdm progress bar (text in a terminal, a widget in a notebook).
        max_bytes: the most bytes the file can be (:func:`max_file_bytes`); a server that announces
            or sends more is stopped at once.
        deadline: seconds the whole download may take, however the server drips its bytes
            (default :func:`download_deadline` of ``max_bytes``; once the server announces the
            file's length, that length at :data:`MIN_RATE_BYTES` when it is sooner).

    Returns:
        ``dest`` as a ``Path``; the file there has the expected MD5.

    Raises:
        DownloadError: connection failed, HTTP error, stall, too slow in all, larger than ``max_bytes``,
            or fewer bytes than announced.
        ChecksumError: the downloaded bytes do not have the expected MD5 (message shows both).

    The bytes are streamed into ``<dest>.<random>.part`` next to ``dest``. On any failure (including
    Ctrl-C) that file is removed, ``dest`` is left untouched, and the folders this call created for
    it are removed again.
    """
    dest = Path(dest)
    part: Path | None = None
    made = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # folders this call creates, deepest first
    done = False
    deadline = download_deadline(max_bytes) if deadline is None else float(deadline)
    start = time.monotonic()
    watchdog = _Watchdog(deadline)
    received = 0
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        part = Path(name)
        request = urllib.request.Request(url, headers={"User-Agent": "cae-lib (python urllib)"})
        digest = hashlib.md5()
        # ``timeout`` sets a socket timeout: it bounds the connect and every single read.
        with _opener(watchdog).open(request, timeout=timeout) as response, open(part, "wb") as out:
            expected_len = _content_length(response)
            if max_bytes is not None and expected_len is not None and expected_len > max_bytes:
                raise _too_big(url, expected_len, max_bytes, announced=True)
            end = start + deadline
            if expected_len is not None:
                end = min(end, start + download_deadline(expected_len))
            bar = progress_bar(
                total=expected_len, unit="B", unit_scale=True, unit_divisor=1024,
                desc=dest.name, leave=False, disable=not progress,
            )
            try:
                while True:
                    # read1: at most one read on the socket, so each call returns as soon as *some*
                    # bytes arrive and waits at most ``timeout`` seconds when none do (a stall).
                    chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    if max_bytes is not None and received > max_bytes:
                        raise _too_big(url, received, max_bytes, announced=False)
                    if time.monotonic() > end:
                        raise _too_slow(url, received, time.monotonic() - start, end - start)
            finally:
                bar.close()
        if watchdog.fired:  # the shut-down connection looked like the end of the file
            raise _too_slow(url, received, time.monotonic() - start, deadline)
        if expected_len is not None and received < expected_len:
            raise DownloadError(
                f"Download of {url} was cut short: got {received:,} of {expected_len:,} bytes "
                "(the server closed the connection)."
            )
        actual = digest.hexdigest()
        if md5 is not None and actual != md5.lower():
            raise ChecksumError(
                f"MD5 mismatch for {url}: expected {md5}, got {actual} ({received:,} bytes). "
                "The file was not saved. The server may have sent an error page or a different file "
                "version; try again later or download it by hand.",
                expected=md5,
                actual=actual,
            )
        os.chmod(part, 0o644)  # mkstemp makes it private (0600); a data file may be shared
        os.replace(part, dest)  # atomic: ``dest`` appears only now, complete and verified
        done = True
        return dest
    except DatasetUnavailableError:  # ours, already clear (DownloadError, ChecksumError)
        raise
    except Exception as err:
        if watchdog.fired:  # whatever the shut-down connection raised, the cause is the deadline
            raise _too_slow(url, received, time.monotonic() - start, deadline) from err
        raise _download_error(url, dest, timeout, err) from err
    finally:
        watchdog.cancel()
        # Runs on success too: by then the .part has been renamed away and this does nothing.
        if part is not None:
            try:
                part.unlink(missing_ok=True)
            except OSError:
                pass
        if not done:  # a failed download leaves no new empty folders behind (a mistyped data folder stays absent)
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:
                    break


def _download_error(url: str, dest: Path, timeout: float, err: Exception) -> Exception:
    """The :class:`DownloadError` that explains ``err`` (anything else is returned as it is, to be raised)."""
    if isinstance(err, (socket.timeout, TimeoutError)):
        return DownloadError(
            f"Download of {url} stalled: no data for {timeout:g} s (timeout). The server may be "
            "overloaded or the network down."
        )
    if isinstance(err, urllib.error.HTTPError):
        return DownloadError(f"Download of {url} failed: HTTP {err.code} {err.reason}.")
    if isinstance(err, urllib.error.URLError):
        reason = err.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return DownloadError(f"Download of {url} timed out after {timeout:g} s while connecting.")
        return DownloadError(f"Download of {url} failed: {reason} (are you offline?).")
    if isinstance(err, (http.client.HTTPException, ConnectionError)):
        return DownloadError(f"Download of {url} failed: {type(err).__name__}: {err}.")
    if isinstance(err, OSError) and disk_is_full(err, dest.parent):
        free = free_bytes(dest.parent)
        left = f"{free / 2**20:.1f} MB free" if free is not None else "no space left"
        return DownloadError(
            f"Download of {url} stopped: the disk that holds {dest.parent} is full ({left}). Nothing half-written "
            f"was kept. Free some space there, or keep the data on another disk (--data-dir, or the {ENV_VAR} "
            "variable), and run again."
        )
    if isinstance(err, OSError):  # e.g. the folder cannot be created
        return DownloadError(f"Download of {url} to {dest} failed: {err}.")
    return err


def _content_length(response: object) -> int | None:
    length = getattr(response, "length", None)
    if length is None:
        header = getattr(response, "headers", {}).get("Content-Length")
        length = int(header) if header and header.isdigit() else None
    return int(length) if length is not None else None


# --------------------------------------------------------------------------------------------
# Making sure a registry file is on disk
# --------------------------------------------------------------------------------------------
def manual_instructions(info: DatasetInfo, size: int, folder: Path) -> str:
    """The steps to get a dataset file by hand, for error messages."""
    filename = info.filename_for(size)
    return (
        "To get it by hand:\n"
        f"  1. download   {info.url_for(size)}\n"
        f"  2. check MD5  {info.md5_for(size)}   (e.g. `md5sum {filename}`)\n"
        f"  3. save as    {folder / filename}\n"
        f"Or use a folder that already holds it: set the environment variable {ENV_VAR}=/path/to/folder "
        "(or pass --data-dir on the command line, data_dir=... in Python).\n"
        f"Or keep working offline with the bundled digits: --dataset digits on the command line, or "
        f"load_dataset({info.name!r}, fallback=\"digits\") in Python."
    )


def ensure_file(
    info: DatasetInfo,
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    timeout: float = 30.0,
    progress: bool = True,
    deadline: float | None = None,
) -> Path:
    """Return the path of ``info``'s file at ``size`` px, downloading it if needed and allowed.

    A download is stopped past :func:`max_file_bytes` or ``deadline`` seconds (default
    :func:`download_deadline`). This is the code path :func:`cae_lib.data.load_dataset` uses. To test it against a local server,
    pass ``dataclasses.replace(info, urls={28: url}, md5s={28: md5})``.

    Raises:
        DatasetUnavailableError: missing and ``download=False``, or the download failed
            (message: URL, MD5, folder, ``CAE_DATA_DIR``, ``fallback="digits"``).
        ChecksumError: an existing file (``download=True``) or the downloaded one has the wrong MD5
            and no good copy could be fetched.
        CorruptFileError: the existing file is empty or too short to be real.
    """
    folder = check_data_dir(resolve_data_dir(data_dir))
    filename = info.filename_for(size)
    path = folder / filename
    expected = info.md5_for(size)
    limit = max_file_bytes(info, size)

    if path.is_file():
        n_bytes = path.stat().st_size
        if n_bytes < MIN_FILE_BYTES:
            raise CorruptFileError(
                f"{path} is only {n_bytes} bytes long, so it is not a valid dataset file (an interrupted "
                "download?). Delete it and run again to re-download it.\n" + manual_instructions(info, size, folder)
            )
        if not download or expected is None:
            return path  # trusted; load_dataset still checks that it opens and has the right keys
        actual = verify_md5(path, expected)
        if actual == expected:
            return path
        mismatch = (
            f"{path} has MD5 {actual}, but the official {info.display_name} file has MD5 {expected} "
            "(truncated, corrupted, or a different version)."
        )
        if not is_writable_dir(folder):
            raise ChecksumError(
                f"{mismatch} The folder is read-only, so it cannot be replaced. Replace the file by hand, "
                "or (in Python) pass download=False to use it unchecked.\n" + manual_instructions(info, size, folder),
                expected=expected, actual=actual,
            )
        try:  # re-download next to it; the bad file is replaced only by a verified one
            download_file(info.url_for(size), path, expected, timeout=timeout, progress=progress, max_bytes=limit, deadline=deadline)
        except DatasetUnavailableError as err:
            raise ChecksumError(
                f"{mismatch} Re-downloading it failed: {err}\nDelete the file and download it again, or "
                "(in Python) pass download=False to use it unchecked (e.g. a file you made yourself; on the command "
                "line, pass such a file as --dataset PATH.npz).\n"
                + manual_instructions(info, size, folder),
                expected=expected, actual=actual,
            ) from err
        remember_md5(path, expected)
        return path

    if not download:
        raise DatasetUnavailableError(
            f"{info.display_name} ({filename}) is not in {folder} and download=False.\n"
            + manual_instructions(info, size, folder)
        )
    if folder.exists() and not is_writable_dir(folder):
        raise DatasetUnavailableError(
            f"{info.display_name} ({filename}) is not in {folder}, and that folder is read-only so it "
            "cannot be downloaded there. Choose a writable folder (--data-dir, data_dir= in Python).\n" + manual_instructions(info, size, folder)
        )
    # A folder the user named that does not exist is more often a typo than a wish for a new cache.
    missing = "" if folder.exists() or folder == default_cache_dir().absolute() else (
        f" (the folder {folder} does not exist: a typo in {ENV_VAR} or --data-dir?)")
    try:
        download_file(info.url_for(size), path, expected, timeout=timeout, progress=progress, max_bytes=limit, deadline=deadline)
    except ChecksumError as err:
        raise ChecksumError(
            f"{info.display_name} ({filename}): {err}\n" + manual_instructions(info, size, folder),
            expected=err.expected, actual=err.actual,
        ) from err
    except DatasetUnavailableError as err:
        raise DatasetUnavailableError(
            f"{info.display_name} ({filename}) is not in {folder}{missing} and could not be downloaded: {err}\n"
            + manual_instructions(info, size, folder)
        ) from err
    if expected is not None:
        remember_md5(path, expected)
    return path
