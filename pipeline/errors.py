"""The errors a user can fix. The CLI prints them as one line on stderr and exits 2.

Errors raised on a Beam worker travel back wrapped in the runner's own exception; MARKER lets the CLI
find the original message in it.
"""
from __future__ import annotations

import re

MARKER = "[nanguard] "


class NanguardError(Exception):
    """A problem with the command, the configuration or the input that the user can fix."""

    def __init__(self, message: str):
        super().__init__(MARKER + message)
        self.message = message


class ConfigError(NanguardError):
    """Bad flags, suite or output location."""


class InputError(NanguardError):
    """Input files that are missing, unreadable or malformed."""


def user_message(exc: BaseException) -> str | None:
    """The nanguard message inside exc (or inside a runner's wrapper of it), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NanguardError):
            return _plain(exc.message)
        found = re.search(re.escape(MARKER) + r"([^\n]*)", str(exc))
        if found:  # inside a wrapper's repr: its closing quote follows our message
            return _plain(found.group(1)).rstrip("'\"")
        exc = exc.__cause__ or exc.__context__
    return None


def _plain(text: str) -> str:
    """Our message without what a runner wrapped around it on the way back (Beam re-raises a DoFn's error as
    the same type with the step's name appended): '[while running ...]', the marker again, quotes."""
    text = re.sub(r"\s*\[while running [^\]]*\]", "", text).replace(MARKER, "")
    return text.strip()
