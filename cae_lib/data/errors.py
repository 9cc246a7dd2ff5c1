"""Exceptions of the data layer. Each message names the problem and the fix."""

from __future__ import annotations


class DatasetUnavailableError(RuntimeError):
    """A dataset file is not on disk and could not be downloaded (offline, server down, stalled...).

    ``load_dataset(..., fallback="digits")`` catches this error (and its subclasses) and returns the
    bundled ``digits`` dataset instead, with a warning.
    """


class DownloadError(DatasetUnavailableError):
    """A download failed: connection refused, HTTP error, timeout/stall, or the transfer was cut short."""


class ChecksumError(DatasetUnavailableError):
    """A file's MD5 is not the official one. The message shows both digests."""

    def __init__(self, message: str, expected: str | None = None, actual: str | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class CorruptFileError(DatasetUnavailableError):
    """A file exists but cannot be read as a dataset (truncated, corrupted, wrong keys, bad image)."""


class DatasetFallbackWarning(UserWarning):
    """Emitted when ``load_dataset(..., fallback=...)`` returns the fallback dataset instead."""
