"""One exception type for problems the user can fix, and the CLI wrapper that turns it into one line."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

# The optional installs, and the top-level modules each brings. requirements.txt alone runs detect.py with
# the shipped ONNX model; a command that needs more says in one line which file to install.
REQUIREMENTS_OF_MODULE = {
    **dict.fromkeys(("ultralytics", "torch", "onnx", "onnxslim", "pandas", "matplotlib",
                     "lxml", "labelImg", "PyQt5"), "requirements-train.txt"),
    **dict.fromkeys(("fastapi", "uvicorn", "multipart", "python_multipart", "swagger_ui_bundle"),
                    "requirements-serve.txt"),
    **dict.fromkeys(("ray", "psycopg"), "requirements-fleet.txt"),
    **dict.fromkeys(("numpy", "cv2", "PIL", "yaml", "tqdm", "onnxruntime", "trackers", "supervision", "av"),
                    "requirements.txt"),
}

# Where a module's pip name differs from its import name (for messages that say what to install).
PACKAGE_OF_MODULE = {"multipart": "python-multipart", "python_multipart": "python-multipart", "PIL": "pillow",
                     "cv2": "opencv-python", "yaml": "pyyaml", "labelImg": "labelimg", "swagger_ui_bundle": "swagger-ui-bundle-v2"}


# The longest error line printed: a message built from hostile input (a 2-GB YAML value) stays one readable line.
MAX_ERROR_CHARS = 600


def printable(text: str) -> str:
    """`text` with its control characters written as escapes (ESC as \\x1b): a file name, a stream's URL or a
    model's metadata printed as it is could send the terminal escape sequences (retitle it, hide what follows)."""
    return text if text.isprintable() else "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def one_line(message: object, limit: int = MAX_ERROR_CHARS) -> str:
    """The first line of a message (another library's exception, a value from a file), cut to `limit` characters,
    printable (see `printable`)."""
    text = str(message).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > limit:
        first = first[:limit] + f"... ({len(first) - limit} more characters)"
    return printable(first)


class UserError(Exception):
    """Bad input or a refused action: printed as one line, exit status 2, never a traceback."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


def _requirements_path(requirements: str) -> str:
    path = Path(__file__).resolve().parents[1] / requirements
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def missing_requirement_message(exc: ModuleNotFoundError) -> str | None:
    """'this needs ultralytics, which is not installed: pip install -r requirements-train.txt', or None for a
    module no requirements file brings (a bug, not an install step)."""
    module = (exc.name or "").split(".")[0]
    requirements = REQUIREMENTS_OF_MODULE.get(module)
    if requirements is None:
        return None
    return f"this needs '{module}', which is not installed: pip install -r {_requirements_path(requirements)}"


def require_modules(command: str, *modules: str) -> None:
    """Check up front that a command's optional packages are installed, and name every missing one at once
    (an import error would name only the first), with the requirements file that brings them."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        packages = ", ".join(PACKAGE_OF_MODULE.get(module, module) for module in missing)
        files = " ".join(f"-r {_requirements_path(f)}" for f in sorted({REQUIREMENTS_OF_MODULE[m] for m in missing}))
        raise UserError(f"{command} needs {packages}, not installed: pip install {files}")


OUT_OF_MEMORY = re.compile(r"can't allocate memory|out of memory|failed to allocate|bad_alloc|std::bad_alloc", re.I)


def out_of_memory_detail(exc: BaseException) -> str:
    """' (it asked for 32 GiB)' where the message says how much, else ''."""
    asked = re.search(r"allocate (\d+) bytes", str(exc))
    return f" (it asked for {int(asked.group(1)) / 2**30:.1f} GiB at once)" if asked else ""


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's main(), mapping UserError (and an OSError, such as --project naming a file) to a one-line
    error and Ctrl-C to exit 130.

    Everything a command writes is written atomically and flushed as it goes, so stopping
    it with Ctrl-C keeps what was done; the message says so.
    """
    try:
        return main(argv)
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = missing_requirement_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: everything written so far is complete and kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `check.py | head` is not an error
        return 0
    except OSError as exc:  # an output path that is a file, no permission, a full disk: whoever raised it
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"error: {one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:  # PyTorch, OpenVINO and ONNX Runtime each say it their own way
        if not isinstance(exc, MemoryError) and not OUT_OF_MEMORY.search(str(exc)):
            raise
        print(f"error: out of memory{out_of_memory_detail(exc)}: a smaller --imgsz (or --batch) needs less",
              file=sys.stderr)
        return 2
