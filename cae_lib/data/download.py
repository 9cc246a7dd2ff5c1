"""Finding and downloading dataset files without ever hanging or leaving a half-written file.

Three rules, learned from the failures MedMNIST users keep reporting (Zenodo outages, downloads
that hang forever, truncated files that later crash a notebook):

1. **Time out.** Every network read waits at most ``timeout`` seconds for data; a server that
   stops sending (a *stall*) aborts the download instead of hanging the classroom.
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
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from cae_lib.data.checksums import cached_md5, md5sum, remember_md5, verified_cache_dir, verify_md5  # noqa: F401
from cae_lib.data.errors import ChecksumError, CorruptFileError, DatasetUnavailableError, DownloadError
from cae_lib.data.paths import (  # noqa: F401  (re-exported: the old home of these names)
    ENV_VAR,
    check_data_dir,
    default_cache_dir,
    is_writable_dir,
    resolve_data_dir,
)
from cae_lib.utils import progress_bar

if TYPE_CHECKING:
    from cae_lib.data.registry import DatasetInfo

#: Files shorter than this cannot be a real dataset (an empty .npz is 22 bytes).
MIN_FILE_BYTES = 128
_CHUNK = 1 << 16


# --------------------------------------------------------------------------------------------
# Downloading one file
# --------------------------------------------------------------------------------------------
def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` safely: timeout, ``.part`` file, MD5 check, atomic rename.

    Args:
        url: where to fetch from (``http(s)://`` or ``file://``).
        dest: final path of the file. Its folder is created if needed.
        md5: expected MD5 hex digest; ``None`` skips the check (not recommended).
        timeout: seconds to wait for the connection and for *each* piece of data. If the server
            sends nothing for this long (a stall), the download is aborted.
        progress: show a tqdm progress bar (text in a terminal, a widget in a notebook).

    Returns:
        ``dest`` as a ``Path``; the file there has the expected MD5.

    Raises:
        DownloadError: connection failed, HTTP error, timeout/stall, or fewer bytes than announced.
        ChecksumError: the downloaded bytes do not have the expected MD5 (message shows both).

    The bytes are streamed into ``<dest>.<random>.part`` next to ``dest``. On any failure (including
    Ctrl-C) that file is removed, ``dest`` is left untouched, and the folders this call created for
    it are removed again.
    """
    dest = Path(dest)
    part: Path | None = None
    made = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # folders this call creates, deepest first
    done = False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        part = Path(name)
        request = urllib.request.Request(url, headers={"User-Agent": "cae-lib (python urllib)"})
        digest = hashlib.md5()
        received = 0
        # ``timeout`` sets a socket timeout: it bounds the connect and every single read.
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            expected_len = _content_length(response)
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
            finally:
                bar.close()
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
    except (socket.timeout, TimeoutError) as err:
        raise DownloadError(
            f"Download of {url} stalled: no data for {timeout:g} s (timeout). The server may be "
            "overloaded or the network down."
        ) from err
    except urllib.error.HTTPError as err:
        raise DownloadError(f"Download of {url} failed: HTTP {err.code} {err.reason}.") from err
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise DownloadError(f"Download of {url} timed out after {timeout:g} s while connecting.") from err
        raise DownloadError(f"Download of {url} failed: {reason} (are you offline?).") from err
    except (http.client.HTTPException, ConnectionError) as err:
        raise DownloadError(f"Download of {url} failed: {type(err).__name__}: {err}.") from err
    except OSError as err:  # e.g. the folder cannot be created or the disk is full
        raise DownloadError(f"Download of {url} to {dest} failed: {err}.") from err
    finally:
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
) -> Path:
    """Return the path of ``info``'s file at ``size`` px, downloading it if needed and allowed.

    This is the code path :func:`cae_lib.data.load_dataset` uses. To test it against a local server,
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
            download_file(info.url_for(size), path, expected, timeout=timeout, progress=progress)
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
        download_file(info.url_for(size), path, expected, timeout=timeout, progress=progress)
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
