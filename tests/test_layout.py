"""Repository layout the tools and Ultralytics rely on: class lists agree, data.yaml points at data/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from maskdet.config import DEFAULT_DATA_YAML, load_dataset_config, read_class_list

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("voc2yolo.py", "import_yolo.py", "split.py", "check.py", "label.py", "prelabel.py", "merge.py")
TOP_LEVEL_SCRIPTS = ("train.py", "val.py", "export.py", "detect.py", "serve.py")


def raw_data_yaml() -> dict:
    return yaml.safe_load((ROOT / "data.yaml").read_text(encoding="utf-8"))


def test_default_data_yaml_is_the_one_at_the_repository_root():
    assert DEFAULT_DATA_YAML == ROOT / "data.yaml"


def test_predefined_classes_equal_data_yaml_names_in_order():
    # labelImg numbers classes by their line in predefined_classes.txt: a different order would
    # silently relabel every box.
    names = load_dataset_config(ROOT / "data.yaml").names
    assert read_class_list(ROOT / "labeling" / "predefined_classes.txt") == list(names)
    assert names == ("with_mask", "without_mask", "mask_weared_incorrect")


def test_data_yaml_points_at_data_split_images():
    raw = raw_data_yaml()
    assert raw["path"] == "data"
    assert {s: raw[s] for s in ("train", "val", "test")} == {s: f"{s}/images" for s in ("train", "val", "test")}
    config = load_dataset_config(ROOT / "data.yaml")
    assert config.root == ROOT / "data"
    for split in ("train", "val", "test"):
        assert config.images_dir(split) == ROOT / "data" / split / "images"
        assert config.labels_dir(split) == ROOT / "data" / split / "labels"


def test_data_yaml_names_are_an_id_mapping_from_zero():
    names = raw_data_yaml()["names"]
    assert isinstance(names, dict) and sorted(names) == list(range(len(names)))


@pytest.mark.parametrize("script", [*TOP_LEVEL_SCRIPTS, *(f"labeling/{s}" for s in SCRIPTS)])
def test_script_help_describes_every_flag(script):
    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                          cwd=ROOT.parent, timeout=120)  # from outside the clone: no install needed
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(f"usage: {Path(script).name}") and "examples:" in proc.stdout
    lines = proc.stdout[proc.stdout.index("options:"):proc.stdout.index("examples:")].splitlines()[1:]
    headers = [i for i, line in enumerate(lines) if line.startswith("  -")]
    assert len(headers) > 3, proc.stdout
    for i in headers:
        described_here = "  " in lines[i].strip()  # argparse puts a short flag's help on its line
        described_below = i + 1 < len(lines) and lines[i + 1].startswith(" " * 6) and not lines[i + 1].lstrip().startswith("-")
        assert described_here or described_below, f"{script}: {lines[i].strip()} has no description"


# --- layers: higher layers import lower ones, never the reverse ---------------------------------------

PACKAGE = ROOT / "maskdet"
# The bottom: no maskdet subpackage, no numpy or OpenCV (the scripts import them before parsing arguments).
BOTTOM = ("config", "errors", "fileio", "models", "settings", "yolo_format")
# What each layer must not import at module level (a lazy import inside a function, like the
# maskdet.inference.detect.run shim, is allowed: the runtime test below checks it stays lazy).
FORBIDDEN = {
    "inference": ("maskdet.monitoring", "maskdet.pipeline", "maskdet.serving", "maskdet.cli"),
    "monitoring": ("maskdet.pipeline", "maskdet.serving", "maskdet.cli"),
    "pipeline": ("maskdet.serving", "maskdet.cli"),
    "serving": ("maskdet.cli",),
}


def module_level_imports(path: Path) -> list[str]:
    """Modules imported by statements outside functions (what importing the file runs)."""
    import ast

    found = []

    def visit(node) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(child.module)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def offending_imports(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.parent.name}/{path.name} imports {name}" for path in files for name in module_level_imports(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_never_imports_the_layers_above_it(layer):
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert files
    assert offending_imports(files, FORBIDDEN[layer]) == []


def test_the_bottom_modules_import_no_subpackage_and_no_numpy():
    above = tuple(f"maskdet.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()) + ("numpy", "cv2")
    assert offending_imports([PACKAGE / f"{name}.py" for name in BOTTOM], above) == []


def test_the_layering_check_catches_an_upward_import_and_lets_a_lazy_one_be(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom maskdet.monitoring.people import MIN_FRAMES\n\n\ndef f():\n    import maskdet.pipeline\n")
    assert offending_imports([bad], FORBIDDEN["inference"]) == [f"{tmp_path.name}/bad.py imports maskdet.monitoring.people"]


def test_importing_inference_loads_nothing_above_it():
    code = ("import sys, pkgutil, importlib, maskdet.inference as pkg\n"
            "for m in pkgutil.iter_modules(pkg.__path__): importlib.import_module('maskdet.inference.' + m.name)\n"
            "from maskdet.inference.detect import run\n"
            "print(sorted(m for m in sys.modules if m.startswith(('maskdet.monitoring', 'maskdet.pipeline', 'maskdet.serving'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
