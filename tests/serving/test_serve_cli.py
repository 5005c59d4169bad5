"""python serve.py as a user runs it: a real process on 127.0.0.1, real HTTP, real signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import pytest

from maskdet.cli.serve import is_loopback


def test_it_prints_the_url_answers_over_http_and_stops_on_ctrl_c_with_a_summary(start_server, photo):
    server = start_server()
    assert f"open http://127.0.0.1:{server.port}/" in server.process.stdout
    assert httpx.get(f"{server.url}/api/health").json()["classes"][0] == "with_mask"
    with open(photo, "rb") as f:
        assert httpx.post(f"{server.url}/api/detect", files={"file": ("p.png", f)}).json()["counts"]["with_mask"] == 1
    assert "<html" in httpx.get(server.url + "/").text.lower()
    server.process.signal(signal.SIGINT)
    assert server.process.wait(30) == 0
    assert "served 1 photos" in server.process.stdout
    assert "Traceback" not in server.process.stderr


def test_listening_on_all_addresses_without_a_token_warns_in_one_line(start_server):
    server = start_server("--host", "0.0.0.0")
    warnings = [line for line in server.process.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "anyone on the network" in warnings[0]


def test_with_a_token_there_is_no_warning_and_calls_without_it_are_refused(start_server):
    server = start_server("--host", "0.0.0.0", "--token", "s3cret")
    assert "warning" not in server.process.stdout
    assert httpx.get(f"{server.url}/api/health").status_code == 401
    assert httpx.get(f"{server.url}/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_busy_port_is_one_line_error(tools, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "serve.py", "--port", str(port), "--project", str(tmp_path)],
                              capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, f"127.0.0.1:{port}", "--port")


def test_bad_weights_are_one_line_error(tools, tmp_path, serve_kit):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "serve.py", "--weights", str(bad), "--port", str(serve_kit.free_port()),
                           "--project", str(tmp_path)],
                          capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, bad)


def test_a_db_that_is_not_a_monitor_store_is_one_line_error_before_the_server_starts(tools, tmp_path, serve_kit):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: masks\n")
    proc = subprocess.run([sys.executable, "serve.py", "--db", str(notes), "--port", str(serve_kit.free_port()),
                           "--project", str(tmp_path)], capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, notes, "not a monitor.py store")
    assert notes.read_text() == "shopping: masks\n"


def test_without_the_server_packages_it_says_in_one_line_what_to_install(tools):
    code = ("import sys; sys.modules.update(fastapi=None, av=None); from maskdet.cli import launch; "
            "sys.argv = ['serve.py']; sys.exit(launch('serve'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, "fastapi, av", "pip install -r requirements-serve.txt")


def test_only_loopback_addresses_count_as_private():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("myhost")


def test_bad_limits_are_one_line_error(tools, tmp_path):
    proc = subprocess.run([sys.executable, "serve.py", "--workers", "0", "--project", str(tmp_path)],
                          capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, "--workers")


@pytest.mark.parametrize("args", [["--port", "99999"], ["--port", "0"], ["--conf", "5"],
                                  ["--iou", "1.5"], ["--imgsz", "0"], ["--workers", "1000"],
                                  ["--backlog", "-1"], ["--max-upload-mb", "nan"],
                                  ["--keep-minutes", "-5"], ["--max-video-jobs", "0"],
                                  ["--tile", "10"], ["--tile", "-480"], ["--tile", "9000"],
                                  ["--header-timeout", "0"], ["--header-timeout", "nan"], ["--header-timeout", "3601"],
                                  ["--live-timeout", "0"], ["--live-timeout", "-1"], ["--live-timeout", "3601"],
                                  ["--send-timeout", "0"], ["--send-timeout", "inf"]])
def test_every_number_is_range_checked_before_anything_starts(tools, tmp_path, args):
    proc = subprocess.run([sys.executable, "serve.py", *args, "--project", str(tmp_path)],
                          capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, args[0], "must be")
    assert not list(tmp_path.iterdir())  # no run folder was made
