"""Errors a person can act on: the CLI prints the message as one line and exits non-zero."""


class UserFacingError(Exception):
    """Expected failure with a message that says what is wrong and, where it can, what to do."""

    exit_code = 1
