"""User-facing errors.

Every error a user can cause (bad config key, corrupt image, malformed dataset row, unknown tool)
is raised as an `IapoError` whose message names the file, row or key. The CLI prints that one
message and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class IapoError(Exception):
    """Base class of errors caused by user input, printed by the CLI without a traceback."""


class ConfigError(IapoError):
    """A config file or value is wrong (unknown key, bad type, impossible combination)."""


class DataError(IapoError):
    """A data file, row or image is missing, corrupt or malformed."""


class ToolError(IapoError):
    """A tool was called in a way that cannot be executed (bad name, argument, or image)."""
