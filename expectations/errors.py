"""SuiteError: a suite that cannot be loaded or compiled against the input.

The message names the expectation, the argument, the bad value and how to fix it. The rules know nothing of
the CLI: the pipeline turns a SuiteError into its own configuration error (one line, exit 2).
"""
from __future__ import annotations


class SuiteError(ValueError):
    """A malformed suite file, an unsupported expectation or arguments that do not fit the input."""
