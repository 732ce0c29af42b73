"""The one error type that reaches the command line: a one-line message and an exit code."""

from __future__ import annotations

# Exit codes of perfscope's own commands (docs/cli.md); `perfscope run` exits as the script did.
EXIT_USAGE = 2


class PerfscopeError(Exception):
    """A user-facing error: printed as one line, never as a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
