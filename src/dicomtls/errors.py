"""Errors the user can fix: tasks turn these into one line on stderr and exit status 2."""


class UsageError(Exception):
    """Bad input or a missing prerequisite; the message says what is wrong and how to fix it."""
