"""One exception type for problems the user can fix; the CLI prints it as one line, no traceback."""
from __future__ import annotations


class FootprintError(Exception):
    """Bad input or an unmet requirement, with a message that names the file and the problem."""


class UnsafeCheckpointError(FootprintError):
    """A checkpoint whose pickle would import or call something outside the allow-list."""
