"""Errors the user can act on: bad input files and bad configuration."""


class InputDataError(ValueError):
    """A source file cannot be used; the message names the file, the column and the problem."""


class ConfigError(ValueError):
    """The pipeline configuration is invalid; the message names the file and the key."""
