"""Errors the user can fix: tasks turn these into one line on stderr and exit status 2."""


class UsageError(Exception):
    """Bad input or a missing prerequisite; the message says what is wrong and how to fix it.

    One line whatever it quotes: a line break in a file name or a value it names is shown as ``\\n``."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))
