#!/usr/bin/env python3
"""Mutation testing of the modules where a silent bug costs most: would the tests notice a small bug?

mutmut makes one small change at a time (a `-` for a `+`, `<` for `<=`, a constant off by one, a
dropped argument...) in the functions below and runs the tests that reach them; a change no test
fails on ("survivor") is a bug the suite would let through. Each module is run with its own test
files only (fast unit tests, no server processes or GUI), in a copy under runs/mutation/<module>/,
and the score per module is printed: killed / (killed + survived + no tests + timeout).

Not part of CI: it takes minutes per module. mutmut is not in requirements-dev.txt:

    pip install -r requirements-mutation.txt
    nice -n 10 python bench/mutation.py                    # every module
    nice -n 10 python bench/mutation.py fileio auth       # some of them
    python bench/mutation.py --list                        # what is measured, against which tests

Survivors are printed with their diff (and written to runs/mutation/<module>/survivors.txt); each is
either killed by a new test or explained as equivalent in bench/mutation_survivors.md.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402
from maskdet.fileio import atomic_write_text  # noqa: E402

WORK = ROOT / "runs" / "mutation"


@dataclass(frozen=True)
class Target:
    """A module, the functions of it to mutate (None: all), and the tests that must catch the mutants."""

    source: str
    functions: tuple[str, ...] | None
    tests: tuple[str, ...]
    deselect: str = ""  # a pytest -k expression: slow end-to-end tests that reach the code only in a subprocess
    extra: tuple[str, ...] = field(default_factory=tuple)  # other files the tests need beside maskdet/ and tests/

    @property
    def module(self) -> str:
        return self.source[:-3].replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut's mutant names: module.x_function__mutmut_N, module.xǁClassǁmethod__mutmut_N."""
        if self.functions is None:
            return [f"{self.module}.*"]
        out = []
        for f in self.functions:
            cls, _, method = f.rpartition(".")
            out.append(f"{self.module}.xǁ{cls}ǁ{method}__mutmut_*" if cls else f"{self.module}.x_{f}__mutmut_*")
        return out


TARGETS: dict[str, Target] = {
    # Box geometry and NMS: a wrong sign here moves or drops every box, and nothing crashes.
    "geometry": Target("maskdet/inference/detectors.py",
                       ("letterbox", "to_blob", "nms", "wanted", "decode_raw", "decode_end2end", "is_end2end",
                        "OnnxDetector.__call__"),
                       ("tests/inference/test_box_geometry.py", "tests/inference/test_detect_thresholds.py",
                        "tests/inference/test_detect_end2end.py", "tests/inference/test_geometry_edges.py"),
                       deselect="not test_cli_ and not detect_cli and not val_py and not the_onnx_export and not yolo26 and not end2end_export_of "
                                "and not pt_boxes and not pt_detector",
                       extra=("models",)),  # the shipped ONNX model, run on a real photo
    # Upload kinds and pixel limits: hostile bytes must be refused before they are decoded.
    "uploads": Target("maskdet/serving/uploads.py", None,
                      ("tests/serving/test_uploads.py", "tests/serving/test_upload_checks.py")),
    # The --token check of every API call and the live WebSocket.
    "auth": Target("maskdet/serving/auth.py", None, ("tests/serving/test_auth_tokens.py",)),
    # Per-person verdicts, line crossings and alerts: what a report and a webhook say.
    "people": Target("maskdet/monitoring/people.py", None,
                     ("tests/monitoring/test_people.py", "tests/monitoring/test_people_edges.py")),
    # Label parsing and VOC conversion: a silently wrong label trains a wrong model.
    "labels": Target("maskdet/data/labels.py", None, ("tests/data/test_labels.py", "tests/data/test_label_edges.py"),
                     deselect="not property"),  # hypothesis' "never raises" properties: hours under mutation
    "voc": Target("maskdet/data/voc.py", None, ("tests/data/test_voc.py", "tests/data/test_label_edges.py")),
    "convert": Target("maskdet/data/convert.py", None,
                      ("tests/data/test_convert.py", "tests/data/test_convert_edges.py", "tests/data/test_label_edges.py"),
                      deselect="not script and not object_without_bndbox"),
    # Atomic writes: a crash must never leave a half-written file where the user's was.
    "fileio": Target("maskdet/fileio.py", None, ("tests/test_fileio.py", "tests/test_fileio_edges.py")),
}


def prepare(name: str, target: Target, root: Path) -> Path:
    """A fresh copy of the code and tests, with mutmut's settings for this module in its pyproject.toml."""
    work = root / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "maskdet", work / "maskdet", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    copy_extras(target, work)
    (work / "pyproject.toml").write_text(prepare_settings(target), encoding="utf-8")
    return work


def copy_extras(target: Target, work: Path) -> None:
    """samples/ (make_sample.py draws the tests' photos), data.yaml, and what this module's tests need."""
    for extra in ("samples", "data.yaml", *target.extra):
        if (ROOT / extra).is_dir():
            shutil.copytree(ROOT / extra, work / extra, dirs_exist_ok=True)
        elif (ROOT / extra).exists():
            shutil.copy2(ROOT / extra, work / extra)


def prepare_settings(target: Target) -> str:
    """The project's pyproject.toml with a [tool.mutmut] section for this module and its tests."""
    tests = [t for t in target.tests if (ROOT / t).exists()]
    selection = tests + (["-k", target.deselect] if target.deselect else [])
    settings = {
        "source_paths": ["maskdet"],
        "only_mutate": [target.source],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-x", "-q"],
        "pytest_add_cli_args_test_selection": selection,
        "also_copy": ["samples", "data.yaml", *target.extra],
        "use_git_change_detection": False,
    }
    toml = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return toml + "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())


def mutmut(work: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, capture_output=True, text=True,
                          env=env, timeout=timeout)


def results(work: Path, patterns: list[str]) -> dict[str, str]:
    """mutant name -> status (killed, survived, no tests, timeout, ...), for the mutants the patterns name."""
    proc = mutmut(work, "results", "--all", "true")
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s+(\S+): (.+)$", line)
        if m and any(fnmatch.fnmatchcase(m.group(1), p) for p in patterns):
            out[m.group(1)] = m.group(2).strip()
    return out


def mutant_diffs(work: Path, target: Target, names: list[str]) -> dict[str, str]:
    """The changed lines of each mutant, read from the functions mutmut wrote beside the original
    (x_f__mutmut_orig, x_f__mutmut_3): what `mutmut show` prints, without a process per mutant."""
    text = (work / "mutants" / target.source).read_text(encoding="utf-8")
    lines = text.splitlines()
    functions = {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno]) for node in ast.walk(ast.parse(text))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = {}
    for name in names:
        local = name[len(target.module) + 1:]  # x_f__mutmut_3 or xǁClassǁmethod__mutmut_3
        base, _, number = local.rpartition("__mutmut_")
        orig, mutant = functions.get(f"{base}__mutmut_orig", ""), functions.get(f"{base}__mutmut_{number}", "")
        lines = difflib.unified_diff(orig.splitlines()[1:], mutant.splitlines()[1:], lineterm="", n=0)
        out[name] = "\n".join(line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    return out


def score(statuses: dict[str, str]) -> tuple[float | None, dict[str, int]]:
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s] = counts.get(s, 0) + 1
    caught = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get("caught by type check", 0)
    judged = caught + counts.get("survived", 0) + counts.get("no tests", 0) + counts.get("suspicious", 0) + counts.get("segfault", 0)
    return (caught / judged if judged else None), counts


def refresh_tests(name: str, target: Target, root: Path) -> tuple[Path, list[str]]:
    """The last run's copy with today's tests, and its survivors: only they are run again."""
    work = root / name
    before = results(work, target.patterns())
    survivors = [k for k, s in before.items() if s not in ("killed", "timeout", "caught by type check")]
    shutil.rmtree(work / "tests")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    copy_extras(target, work)
    fresh = prepare_settings(target)
    (work / "pyproject.toml").write_text(fresh, encoding="utf-8")
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)  # new tests: which reaches what is found again
    return work, survivors


def run_target(name: str, target: Target, children: int, root: Path, again: bool = False, report: bool = False) -> dict:
    patterns = target.patterns()
    if report and (root / name / "mutants").is_dir():
        work, wanted = root / name, []
    elif again and (root / name / "mutants").is_dir():
        work, wanted = refresh_tests(name, target, root)
    else:
        work, wanted = prepare(name, target, root), patterns
    t0, c0 = time.monotonic(), os.times()
    proc = mutmut(work, "run", "--max-children", str(children), *wanted) if wanted else subprocess.CompletedProcess([], 0, "", "")
    wall = time.monotonic() - t0
    c1 = os.times()
    cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
    if wanted:
        (work / "mutmut-run.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    statuses = results(work, patterns)
    value, counts = score(statuses)
    survivors = sorted(k for k, s in statuses.items() if s not in ("killed", "timeout", "caught by type check"))
    diffs = [f"# {mutant}: {statuses[mutant]}\n{diff}" for mutant, diff in mutant_diffs(work, target, survivors).items()]
    (work / "survivors.txt").write_text("\n".join(diffs), encoding="utf-8")
    if proc.returncode != 0 and not statuses:
        print(f"{name}: mutmut failed (exit {proc.returncode}); see {work / 'mutmut-run.log'}", file=sys.stderr)
    return {"module": name, "source": target.source, "score": value, "counts": counts, "survivors": survivors,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "diffs": diffs}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description="Mutation score (mutmut) per high-stakes module, each against its own tests.",
                            formatter_class=HelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"which to run (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--max-children", type=number(int, 1, 64), default=2, help="mutants tested in parallel")
    parser.add_argument("--list", action="store_true", help="print the modules, functions and tests, then stop")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--again", action="store_true",
                        help="rerun only the last run's survivors, with the tests as they are now (after adding tests)")
    parser.add_argument("--report", action="store_true", help="run nothing: the scores and survivors of the last run")
    parser.add_argument("--work", type=Path, default=WORK, help=f"where the copies go (default {WORK.relative_to(ROOT)})")
    parser.add_argument("--json", help="also write this run's scores (per module: score, counts, survivors) to this "
                                       "JSON file")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}: choose from {', '.join(TARGETS)}")
    chosen = args.modules or list(TARGETS)
    if args.list:
        for name in chosen:
            t = TARGETS[name]
            print(f"{name}: {t.source} [{', '.join(t.functions) if t.functions else 'all functions'}] <- {' '.join(t.tests)}")
        return 0
    if importlib.util.find_spec("mutmut") is None:  # run as `python -m mutmut`, never imported here
        print("error: mutmut is not installed: pip install -r requirements-mutation.txt", file=sys.stderr)
        return 2
    from benchlib import cpu_name, write_json

    rows = []
    for name in chosen:
        print(f"{name}: mutating {TARGETS[name].source} ...", flush=True)
        row = run_target(name, TARGETS[name], args.max_children, args.work.resolve(), args.again, args.report)
        rows.append(row)
        pct = "n/a" if row["score"] is None else f"{row['score']:.1%}"
        print(f"  {pct}  {row['counts']}  ({row['wall_s']} s wall, {row['cpu_s']} s CPU)", flush=True)
        for mutant, diff in zip(row["survivors"], row["diffs"]):
            print(f"    survivor: {mutant}")
            if args.show:
                print("      " + diff.replace("\n", "\n      "))
    print(f"\nmutation score per module (mutmut, {cpu_name()}):")
    print(f"{'module':<10} {'file':<34} {'score':>7} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8}")
    for r in rows:
        c = r["counts"]
        pct = "n/a" if r["score"] is None else f"{r['score']:.1%}"
        print(f"{r['module']:<10} {r['source']:<34} {pct:>7} {c.get('killed', 0):>7} {c.get('survived', 0):>9} "
              f"{c.get('no tests', 0):>9} {c.get('timeout', 0):>8}")
    args.work.mkdir(parents=True, exist_ok=True)
    summary = args.work / "scores.json"
    old = read_scores(summary)
    old.update({r["module"]: {k: v for k, v in r.items() if k != "diffs"} for r in rows})
    atomic_write_text(summary, json.dumps(old, indent=2))  # a kill mid-write keeps the scores of earlier runs
    print(f"survivors' diffs: {args.work}/<module>/survivors.txt; all scores: {summary}")
    if args.json:
        write_json(args.json, {"cpu": cpu_name(), "scores": {r["module"]: {k: v for k, v in r.items() if k != "diffs"}
                                                             for r in rows}})
    return 0


def read_scores(path: Path) -> dict:
    """The scores earlier runs kept in --work (each run adds its modules to them); none if there is no file."""
    if not path.exists():
        return {}
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: not the scores an earlier run wrote ({e}): move it away to start afresh") from None
    if not isinstance(scores, dict):
        raise UserError(f"{path}: not the scores an earlier run wrote (not a JSON object): move it away to start afresh")
    return scores


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
