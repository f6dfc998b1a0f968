"""Errors shown to an operator as one line."""


class CliError(Exception):
    """A one-line message for the operator; the command exits non-zero."""
