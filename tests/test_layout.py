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
