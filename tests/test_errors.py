"""maskdet.errors: problems the user can fix are one line that says what to do."""

from __future__ import annotations

import sys

import pytest

from maskdet.errors import UserError, require_modules


def test_require_modules_names_every_missing_package_and_each_file_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what find_spec sees for a package that is not installed
    monkeypatch.setitem(sys.modules, "multipart", None)
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(UserError) as exc:
        require_modules("serve.py", "fastapi", "yaml", "multipart", "ultralytics")
    assert str(exc.value) == ("serve.py needs fastapi, python-multipart, ultralytics, not installed: "
                              "pip install -r requirements-serve.txt -r requirements-train.txt")


def test_require_modules_is_silent_when_everything_is_there():
    require_modules("detect.py", "yaml", "numpy")
