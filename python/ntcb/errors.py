"""Exceptions raised for damaged or unsupported .ntcb files.

They mirror the Go sentinel errors of pkg/container and pkg/ntcb. Every
exception raised while reading a file names the file; catch ``NtcbError`` to
catch them all.
"""

from __future__ import annotations


class NtcbError(Exception):
    """Base class: the file cannot be read as a .ntcb file.

    ``path`` is the file's path (None for in-memory data) and ``detail`` the
    message without the path.
    """

    def __init__(self, detail: str, path: str | None = None):
        self.detail = detail
        self.path = path
        super().__init__(f"{path}: {detail}" if path else detail)

    def with_path(self, path: str | None, context: str = "") -> "NtcbError":
        """Returns a copy of this error naming path (and context before the detail)."""
        detail = f"{context}: {self.detail}" if context else self.detail
        err = type(self)(detail, path if path is not None else self.path)
        err.__cause__ = self.__cause__
        return err


class BadMagic(NtcbError):
    """The data does not start with the .ntcb magic: not an .ntcb file."""


class UnsupportedVersion(NtcbError):
    """The file's format version is not one this reader reads."""


class ChecksumError(NtcbError):
    """A block's or the footer's CRC-32C does not match."""


class CorruptError(NtcbError):
    """A structural inconsistency, or a payload that does not decode."""


class TooLargeError(CorruptError):
    """A declared length or count exceeds a limit of the format."""


class TruncatedError(NtcbError):
    """The file ends before a structure it declares (cut short, or still being written)."""


class UnknownCodecError(CorruptError):
    """A chunk uses a codec this reader does not know."""


class ExternalModel(NtcbError):
    """The file records its model by SHA-256 only: the blob is stored elsewhere
    (a model file shared by many files) and must be found by its hash."""


class NotFound(NtcbError, KeyError):
    """A key is not in the file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)
