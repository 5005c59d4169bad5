"""The cameras file is checked whole before anything starts: one line per mistake, with its line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PERIOD_RANGE = "from 2 minutes (a shorter row with one person in it is that person) to 7 days"


def monitor(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "monitor.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_every_mistake_is_named_on_its_own_line_and_nothing_starts(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text("""defaults:
  fps: 0
  alert: [no_mask]
  webhook: ftp://hooks.example/x
  colour: red
cameras:
  - name: door
    source: ftp://10.0.0.5/stream
    site: hq
  - name: door
    source: rtsp://10.0.0.6/stream
  - site: hq
    sorce: rtsp://10.0.0.7/stream
  - name: yard
    source: missing.mp4
    line: 0,0,0,0
""", encoding="utf-8")
    db = tmp_path / "fleet.db"
    proc = monitor(path, "--db", db, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith(f"error: {path}:") for line in lines), lines
    expected = {
        2: "fps must be between",
        3: "unknown class 'no_mask'",
        4: "'ftp://hooks.example/x' is not a http:///https:// URL",
        5: "unknown key 'colour' in defaults",
        8: "'ftp://10.0.0.5/stream' is not a rtsp://",
        10: "duplicate camera name 'door' (first on line 7)",
        12: "a camera without 'name'",
        13: "unknown key 'sorce' in a camera",
        15: "'missing.mp4': no such video file",
        16: "the two ends are the same point",
    }
    found = {int(line.split(":")[2]): line for line in lines if "without 'source'" not in line}
    assert sorted(found) == sorted(expected), lines
    for number, fragment in expected.items():
        assert fragment in found[number], (number, found[number])
    assert any(line.startswith(f"error: {path}:12: a camera without 'source'") for line in lines)
    assert not db.exists(), "nothing is started, not even the store"


def test_anchors_aliases_and_oversized_files_are_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x]\nb: &b [*a, *a, *a]\ncameras: [*b, *b]\n", encoding="utf-8")
    proc = monitor(bomb, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == f"error: {bomb}:1: YAML anchors and aliases (&, *) are not accepted here (7 in all)\n"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    proc = monitor(big, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {big}: over 1 MiB: not a cameras file"
    broken = tmp_path / "broken.yaml"
    broken.write_text("cameras:\n  - name: a\n    source: [unclosed\n", encoding="utf-8")
    proc = monitor(broken, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"error: {broken}:") and "not valid YAML" in proc.stderr


def test_a_good_file_passes_the_check(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text("""defaults:
  fps: 1
  alert: [without_mask, mask_weared_incorrect]
  webhook: https://hooks.example/mask
cameras:
  - {name: door, source: "rtsp://user:pw@10.0.0.5/stream", site: hq, zone: entrance, line: "0,0.6,1,0.6"}
  - {name: desk, source: 0, site: hq, zone: reception, alert_after: 5}
  - {name: yard, source: "http://10.0.1.9:8080/live.ts", site: depot}
""", encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: 3 cameras, 2 sites, model ") and proc.stdout.endswith(" px): OK\n")


def test_the_check_loads_the_model_the_file_names(tmp_path):
    """A wrong model path passed the check before, and then stopped every worker; it is the file's mistake, on its line."""
    path = tmp_path / "cameras.yaml"
    path.write_text("defaults:\n  model: nowhere/best.onnx\ncameras:\n  - {name: door, source: 0}\n", encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}:2: model 'nowhere/best.onnx': no such file ({tmp_path / 'nowhere' / 'best.onnx'})"]
    assert "OK" not in proc.stdout


def test_the_model_is_found_relative_to_the_cameras_file_as_its_video_sources_are(tmp_path):
    """configs/cameras.yaml naming ../models/best.onnx works from any folder, as `source: ../videos/a.mp4` does;
    the README's `model: models/best.onnx` in a cameras.yaml beside models/ is the same rule."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "best.onnx").symlink_to(ROOT / "models" / "best.onnx")
    (tmp_path / "configs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    camera = "cameras:\n  - {name: door, source: 'rtsp://10.0.0.5/s'}\n"
    nested = tmp_path / "configs" / "cameras.yaml"
    nested.write_text("defaults:\n  model: ../models/best.onnx\n" + camera, encoding="utf-8")
    beside = tmp_path / "cameras.yaml"
    beside.write_text("defaults:\n  model: models/best.onnx\n" + camera, encoding="utf-8")
    for path in (nested, beside):
        proc = monitor(path, "--check", cwd=tmp_path / "elsewhere")
        assert proc.returncode == 0, proc.stderr
        assert f"model {tmp_path / 'models' / 'best.onnx'} (" in proc.stdout and proc.stdout.endswith(": OK\n"), proc.stdout


def test_a_file_nested_deeper_than_any_cameras_file_is_one_line_not_a_traceback(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("cameras: " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")  # 2 KB
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [f"error: {path}:1: lists or mappings nested over 20 deep: not a cameras file"]


def test_numbers_on_the_command_line_are_range_checked(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    for args, fragment in ((["--workers", "0"], "--workers must be between 1 and 1024"),
                           (["--duration", "-1"], "--duration must be 0"),
                           (["--retain", "3 weeks"], "--retain must be a number and a unit"),
                           (["--retain", "0s"], "--retain 0s: must be between"),
                           (["--period", "20 minutes"], "--period must be a number and a unit"),
                           (["--privacy", "counts", "--period", "150.5s"], "in whole seconds, not 150.5s"),
                           (["--privacy", "counts", "--period", "8d"], f"--period must be {PERIOD_RANGE}, in whole seconds, not 8d"),
                           (["--period", "20m"], "--period is the length of a row of counts: it needs --privacy counts")):
        proc = monitor(path, *args, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.strip().startswith("error: ") and fragment in proc.stderr, proc.stderr


def test_privacy_counts_and_its_period_are_read_from_the_file_and_checked(tmp_path):
    from maskdet.fleet.cameras import read_fleet

    path = tmp_path / "cameras.yaml"
    path.write_text("defaults:\n  privacy: counts\n  period: 15m\ncameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n",
                    encoding="utf-8")
    fleet = read_fleet(path)
    assert (fleet.defaults.privacy, fleet.defaults.period) == ("counts", 900)
    assert read_fleet(tmp_path / "cameras.yaml").defaults.period == 900
    path.write_text("defaults:\n  period: 300\ncameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    assert (read_fleet(path).defaults.privacy, read_fleet(path).defaults.period) == ("blur", 300)  # blur by default
    path.write_text("defaults:\n  privacy: faces\n  period: 2 weeks\ncameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n",
                    encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {path}:2: privacy must be one of off, blur, counts, not 'faces'",
        f"error: {path}:3: period must be a number and a unit (s, m, h or d), such as 72h or 20m, not '2 weeks'"]


def test_tiles_and_the_mirror_view_are_read_from_the_defaults_and_checked(tmp_path):
    from maskdet.fleet.cameras import read_fleet

    path = tmp_path / "cameras.yaml"
    camera = "cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n"
    path.write_text("defaults:\n  tile: 640\n  augment: true\n" + camera, encoding="utf-8")
    assert (read_fleet(path).defaults.tile, read_fleet(path).defaults.augment) == (640, True)
    path.write_text("defaults:\n  tile: 0\n  augment: off\n" + camera, encoding="utf-8")
    assert (read_fleet(path).defaults.tile, read_fleet(path).defaults.augment) == (0, False)
    path.write_text("defaults:\n  fps: 1\n  tile: 20\n  augment: 'true'\n" + camera, encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {path}:3: tile must be 0 (off) or 64 to 8192 pixels, not 20",
                                        f"error: {path}:4: augment must be true or false, not 'true'"]
    path.write_text("defaults:\n  tile: 9000\n  augment: [true]\n" + camera, encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.stderr.splitlines() == [f"error: {path}:2: tile must be between 0 and 8192, not 9000",
                                        f"error: {path}:3: augment must be a single value"]


def test_a_cameras_own_tile_and_augment_are_checked_on_its_line(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text("defaults:\n  tile: 640\ncameras:\n  - name: a\n    source: 'rtsp://10.0.0.5/s'\n    tile: 5000.5\n"
                    "  - {name: b, source: 'rtsp://10.0.0.6/s', augment: 2}\n  - {name: c, source: 'rtsp://10.0.0.7/s'}\n",
                    encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {path}:6: tile must be a whole number, not '5000.5'",
                                        f"error: {path}:7: augment must be true or false, not '2'"]


def test_live_cameras_and_video_files_in_one_file_are_one_line_naming_one_of_each(tmp_path):
    import cv2
    import numpy as np

    clip = tmp_path / "yard.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    path = tmp_path / "cameras.yaml"
    path.write_text(f"cameras:\n  - {{name: door, source: 'rtsp://10.0.0.5/s'}}\n  - {{name: yard, source: {clip}}}\n",
                    encoding="utf-8")
    proc = monitor(path, "--check", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}: mixes live cameras (door, ...) and video files (yard: {clip}, ...): a run is one or the other; "
        "run the live cameras from this file, and the videos with --archive DIR (a folder of them)"]


def test_a_period_of_counts_is_never_shorter_than_two_minutes_and_says_its_real_range(tmp_path):
    """privacy counts keeps no per-minute row because a minute with one person in it is that person: a period of a
    minute or less would be that row again, from the file or from --period. The range said is the one applied."""
    from maskdet.fleet.cameras import read_fleet

    camera = "cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n"
    path = tmp_path / "cameras.yaml"
    for period, seconds in (("2m", 120), ("120", 120), ("7d", 7 * 86400)):
        path.write_text(f"defaults:\n  privacy: counts\n  period: {period}\n" + camera, encoding="utf-8")
        assert read_fleet(path).defaults.period == seconds
    for period in ("0", "1s", "1m", "119", "8d"):
        path.write_text(f"defaults:\n  privacy: counts\n  period: {period}\n" + camera, encoding="utf-8")
        proc = monitor(path, "--check", cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.splitlines() == [
            f"error: {path}:3: period must be {PERIOD_RANGE}, in whole seconds, not {period}"], (period, proc.stderr)
    path.write_text(camera, encoding="utf-8")
    for period in ("1s", "60s", "1m"):
        proc = monitor(path, "--privacy", "counts", "--period", period, "--check", cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.splitlines() == [
            f"error: --period must be {PERIOD_RANGE}, in whole seconds, not {period}"], (period, proc.stderr)
    proc = monitor(path, "--privacy", "counts", "--period", "2m", "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
