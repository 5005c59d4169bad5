"""What an exported model says about itself (class names, input size), read as outside input.

A model file or folder comes from anywhere: its metadata is text that is bounded before it is parsed, and
checked for the shape Ultralytics writes, so a hostile or broken export gets a one-line error, not a hang.
"""

from __future__ import annotations

import ast
from pathlib import Path

from maskdet.errors import UserError

NAMES_TEXT_LIMIT = 100_000  # characters of a model's class-name list parsed at most (LVIS's 1,203 take ~20,000)


def names_from_metadata(raw: str | dict | list | None, path: Path) -> tuple[str, ...]:
    """Class names as Ultralytics writes them: a dict or list, or its repr (ONNX metadata is text). A model comes
    from outside: the text is bounded before it is parsed, and each name must be a plain name, not a structure."""
    if not raw:
        raise UserError("this model has no class names in its metadata: export it with python export.py", path)
    if isinstance(raw, str) and len(raw) > NAMES_TEXT_LIMIT:
        raise UserError(f"the class names in this model's metadata are over {NAMES_TEXT_LIMIT:,} characters: "
                        "not an Ultralytics export", path)
    try:
        names = ast.literal_eval(raw) if isinstance(raw, str) else raw
        names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
        raise UserError("the class names in this model's metadata cannot be read", path) from None
    if not names or not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names):
        raise UserError("the class names in this model's metadata are not a list of names", path)
    return tuple(str(n) for n in names)


def imgsz_from_metadata(raw, path: Path) -> int:
    """The input size an Ultralytics export with a dynamic input was made for (an int, a [h, w] list, or its
    repr in ONNX text), range-checked as --imgsz is: a model's metadata is outside input."""
    try:
        value = ast.literal_eval(raw) if isinstance(raw, str) and len(raw) < 100 else raw
        size = value[0] if isinstance(value, (list, tuple)) else value
        if isinstance(size, int) and not isinstance(size, bool) and 32 <= size <= 8192:
            return size
    except (ValueError, SyntaxError, TypeError, IndexError, MemoryError, RecursionError):
        pass
    raise UserError(f"the input size in this model's metadata ({str(raw)[:40]!r}) is not 32 to 8192 pixels: "
                    "give --imgsz", path)
