"""Errors of fetching a distribution."""


class DistributionError(Exception):
    """A distribution could not be obtained; the message names the source and what went wrong."""


class SourceUnavailableError(DistributionError):
    """This source cannot be reached or lacks the version; the next configured source is tried."""
