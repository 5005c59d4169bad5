"""One exception type for problems the user can fix, and the CLI wrapper that turns it into one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """Bad input or a refused action: printed as one line, exit status 2, never a traceback."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's main(), mapping UserError to a one-line error and Ctrl-C to exit 130.

    Everything a command writes is written atomically and flushed as it goes, so stopping
    it with Ctrl-C keeps what was done; the message says so.
    """
    try:
        return main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: everything written so far is complete and kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `check.py | head` is not an error
        return 0
