"""The requirements files: every package the code imports is listed, and the light install is light.

A package missing from the requirements once passed CI only because the machine already had it; these
tests read the code and the files themselves, so such a gap fails here whatever is installed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from maskdet.errors import REQUIREMENTS_OF_MODULE

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("maskdet", "labeling", "tests", "bench")
LOCAL_MODULES = {"maskdet", "conftest", "synthetic", "benchlib", "privacy_outputs", "live_socket", "virtual_display"}  # the package, and test and bench helpers
# Installed with another listed package and imported only through it (never on its own).
INDIRECT = {"pkg_resources", "setuptools", "_pytest"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(file: str, seen: set[str] | None = None) -> set[str]:
    """Distribution names a requirements file installs, following `-r other.txt`."""
    seen = seen if seen is not None else set()
    if file in seen:
        return set()
    seen.add(file)
    names: set[str] = set()
    for raw in (ROOT / file).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(line[2:].strip(), seen)
        elif line:
            names.add(normalize(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def python_files() -> list[Path]:
    files = [p for p in ROOT.glob("*.py")]
    for folder in CODE_DIRS:
        files += (ROOT / folder).rglob("*.py")
    return sorted(files)


def third_party_imports() -> dict[str, list[str]]:
    """Top-level module -> the files importing it, for every module neither standard nor ours."""
    found: dict[str, list[str]] = {}
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in LOCAL_MODULES or top in INDIRECT or top == "__future__":
                    continue
                found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def distributions_of(module: str) -> list[str]:
    return [normalize(d) for d in packages_distributions().get(module, [])]


# Tools of a bench script that is not CI, kept out of requirements-dev.txt: mutmut (bench/mutation.py).
EXTRA_REQUIREMENTS = ("requirements-mutation.txt",)


def test_every_imported_package_is_in_a_requirements_file():
    listed = requirement_names("requirements-dev.txt").union(*map(requirement_names, EXTRA_REQUIREMENTS))
    problems = []
    for module, files in sorted(third_party_imports().items()):
        dists = distributions_of(module)
        if not dists:
            problems.append(f"{module} (imported by {files[0]}) is not installed: add its package to a requirements file")
        elif not listed.intersection(dists):
            problems.append(f"{module} (imported by {files[0]}) comes from {dists[0]}, which no requirements file lists")
    assert not problems, "\n".join(problems)


def test_mutation_testing_installs_the_dev_tools_and_mutmut():
    names = requirement_names("requirements-mutation.txt")
    assert "mutmut" in names and requirement_names("requirements-dev.txt") <= names
    assert "mutmut" not in requirement_names("requirements-dev.txt")  # CI does not need it
    assert "requirements-mutation.txt" in (ROOT / "bench" / "mutation.py").read_text(encoding="utf-8")


def test_the_scan_sees_the_imports_that_matter():
    # The scan itself must work: these are imported today and a broken parser would find nothing.
    imports = third_party_imports()
    for module in ("cv2", "numpy", "onnxruntime", "ultralytics", "onnx", "pytest"):
        assert module in imports, module


def test_onnx_export_needs_are_listed_for_training():
    # Ultralytics imports these only inside export(); the scan above cannot see them.
    assert {"onnx", "onnxslim"} <= requirement_names("requirements-train.txt")


@pytest.mark.parametrize("module, requirements", sorted(REQUIREMENTS_OF_MODULE.items()))
def test_the_install_hint_names_the_file_that_brings_the_module(module, requirements):
    dists = distributions_of(module)
    if not dists:
        pytest.skip(f"{module} is not installed here")
    assert requirement_names(requirements).intersection(dists), f"{requirements} does not bring {module}"


def test_the_quickstart_install_brings_no_pytorch():
    light = requirement_names("requirements.txt")
    assert not light & {"torch", "torchvision", "ultralytics", "pandas", "matplotlib"}, light
    assert {"onnxruntime", "opencv-python", "numpy", "pyyaml"} <= light


def test_the_fleet_has_its_own_requirements_file_outside_the_light_install():
    # monitor.py's Ray and PostgreSQL driver are heavy: requirements-fleet.txt brings them, the dev install includes it.
    assert {"ray", "psycopg"} <= requirement_names("requirements-fleet.txt")
    assert not {"ray", "psycopg"} & requirement_names("requirements.txt")
    assert {"ray", "psycopg"} <= requirement_names("requirements-dev.txt")


# Modules the light install does not have: blocked, a script behaves as on a machine without them.
HEAVY = sorted(module for module, file in REQUIREMENTS_OF_MODULE.items() if file != "requirements.txt")


def run_without_heavy_packages(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # As `python script.py` does, the script's folder comes first on the path.
    blocker = (f"import sys, runpy; sys.modules.update(dict.fromkeys({HEAVY!r})); "
               f"sys.path.insert(0, {str(Path(script).parent)!r}); "
               f"sys.argv = {[script, *args]!r}; sys.exit(runpy.run_path({script!r}, run_name='__main__'))")
    return subprocess.run([sys.executable, "-c", blocker], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_detection_with_the_shipped_onnx_model_needs_only_the_light_install(tmp_path):
    proc = run_without_heavy_packages(str(ROOT / "detect.py"), "--source", str(ROOT / "samples/images/astronaut.jpg"),
                                      "--project", str(tmp_path), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "exp" / "astronaut.jpg").stat().st_size > 0


@pytest.mark.parametrize("script, args", [
    ("train.py", ["--epochs", "1"]),
    ("train_second_stage.py", []),
    ("val.py", []),
    ("export.py", []),
    ("detect.py", ["--weights", "models/best.pt", "--source", "samples/images/astronaut.jpg", "--project", "{tmp}"]),
    ("labeling/check.py", []),
    ("labeling/voc2yolo.py", ["--xml", "{tmp}", "--out", "{tmp}"]),
    ("labeling/label.py", ["--images", "{tmp}"]),
])
def test_a_command_without_its_packages_says_in_one_line_what_to_install(script, args, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    proc = run_without_heavy_packages(str(ROOT / script), *args, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "pip install -r" in lines[0] and "requirements-train.txt" in lines[0]


def test_monitor_without_ray_says_which_file_to_install(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: door, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    assert run_without_heavy_packages(str(ROOT / "monitor.py"), "--help", cwd=tmp_path).returncode == 0
    proc = run_without_heavy_packages(str(ROOT / "monitor.py"), str(cameras), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: monitor.py needs ray") and \
        lines[0].endswith("requirements-fleet.txt"), proc.stderr


COMMANDS = ["detect.py", "train.py", "train_second_stage.py", "val.py", "export.py", "serve.py", "labeling/check.py", "labeling/split.py",
            "labeling/merge.py", "labeling/voc2yolo.py", "labeling/import_yolo.py", "labeling/prelabel.py",
            "labeling/label.py"]


@pytest.mark.parametrize("script", COMMANDS)
def test_help_works_on_the_light_install(script):
    # --help is how a newcomer finds out what a command needs: it must not need it first.
    proc = run_without_heavy_packages(str(ROOT / script), "--help", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {Path(script).name}") and not proc.stderr, proc.stderr
