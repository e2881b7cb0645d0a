"""User-facing errors.

Anything a user can cause (a bad path, an unknown name, data that does not fit a model)
raises :class:`VaekitError` with a message that names the input, says what is wrong and
what to do. The command line prints these without a traceback and exits non-zero.
"""


class VaekitError(Exception):
    """An error caused by user input; the message is shown as-is."""

    exit_code = 2


class Interrupted(VaekitError):
    """Training stopped by Ctrl-C; the last completed epoch is on disk."""

    exit_code = 130


def require(condition: bool, message: str) -> None:
    """Raise :class:`VaekitError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise VaekitError(message)
