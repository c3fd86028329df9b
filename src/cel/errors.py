"""The project's exceptions, in a leaf module: it imports nothing from ``cel``, so every module can
raise them without importing upward (``config`` and ``embeddings`` used to import each other)."""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type; the message names the key."""


class DataError(RuntimeError):
    """Raw data is missing, corrupt or malformed; the message says which file and what to do."""


class ChecksumError(DataError):
    """A file's checksum differs from the published one: names the file, expected and actual hash."""

    def __init__(self, what: str, algo: str, expected: str, actual: str):
        self.what, self.expected, self.actual = what, expected, actual
        super().__init__(
            f"checksum mismatch for {what}: expected {algo} {expected}, got {actual}. "
            "The file is corrupt or not the published release; delete it and fetch it again."
        )
