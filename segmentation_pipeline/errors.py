"""Errors the user can act on: bad input files, bad configuration, folders that cannot be written."""


class InputDataError(ValueError):
    """A source file cannot be used; the message names the file, the column and the problem."""


class ConfigError(ValueError):
    """The pipeline configuration is invalid; the message names the file and the key."""


class StorageError(OSError):
    """A folder the project writes (outputs, the Dagster instance) cannot be used: not a folder,
    read-only, or full. The message names the path and the problem."""

    def __str__(self) -> str:
        return self.strerror


def storage_error(path, exc: OSError, doing: str = "cannot write") -> StorageError:
    """One line naming the path and what the operating system said (e.g. 'No space left on device')."""
    return StorageError(exc.errno, f"{path}: {doing}: {exc.strerror or exc}")
