"""Errors a person can act on: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class SurveyError(Exception):
    """A refusal or a problem the message explains in full (what was found, what to do)."""


class PublicationRefused(SurveyError):
    """Publishing this year would replace good figures with worse ones (monitoring-tables §5)."""


class YearBusy(SurveyError):
    """Another run holds the year's lock."""


class ConfigError(SurveyError):
    """A setting read from the environment is not what it must be."""


class BatchFailed(RuntimeError):
    """A batch of landed files could not be checked, for a cause a retry may cure (a full disk,
    a lost worker's leftovers): names the batch's files, for the alert and the log."""

    def __init__(self, files: list[str], error: Exception):
        self.files = files
        super().__init__(f"checking the batch of {len(files)} landed files failed "
                         f"({', '.join(files)}): {type(error).__name__}: {error}")
