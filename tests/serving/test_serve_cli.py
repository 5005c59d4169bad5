"""python serve.py as a user runs it: a real process on 127.0.0.1, real HTTP, real signals."""

from __future__ import annotations

import os
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


def test_a_db_url_of_another_scheme_is_refused_naming_what_db_takes(tools, tmp_path, serve_kit):
    proc = subprocess.run([sys.executable, "serve.py", "--db", "mysql://127.0.0.1/x", "--port", str(serve_kit.free_port()),
                           "--project", str(tmp_path)], capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, "mysql://127.0.0.1/x: --db takes an SQLite file (a path) or a PostgreSQL URL",
                                "not a mysql:// URL")


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
                                  ["--send-timeout", "0"], ["--send-timeout", "inf"],
                                  ["--max-saved-mb", "0"], ["--max-saved-mb", "-1"], ["--max-saved-mb", "nan"],
                                  ["--max-saved-mb", "2e6"]])
def test_every_number_is_range_checked_before_anything_starts(tools, tmp_path, args):
    proc = subprocess.run([sys.executable, "serve.py", *args, "--project", str(tmp_path)],
                          capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    tools.assert_one_line_error(proc, args[0], "must be")
    assert not list(tmp_path.iterdir())  # no run folder was made


# --- stopping --------------------------------------------------------------------------------------


def test_sigterm_stops_it_as_ctrl_c_does_with_the_summary_and_exit_status_0(start_server, photo, tmp_path):
    """`kill PID` and `docker stop` send SIGTERM: the same graceful end as Ctrl-C, not a silent exit 143."""
    server = start_server()
    with open(photo, "rb") as f:
        assert httpx.post(f"{server.url}/api/detect", files={"file": ("p.png", f)}).status_code == 200
    server.process.signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    assert "served 1 photos" in server.process.stdout
    assert "Traceback" not in server.process.stderr


# --- a start that fails --------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--weights", "nope.onnx"], ["--weights", "{not_a_model}"], ["--imgsz", "640"]])
def test_a_start_that_fails_leaves_no_run_folder(tools, tmp_path, weights, serve_kit, flags):
    not_a_model = tmp_path / "model.onnx"
    not_a_model.write_bytes(b"not a model")
    flags = [flag.format(not_a_model=not_a_model) for flag in flags]
    if "--weights" not in flags:
        flags += ["--weights", str(weights)]  # the scripted model takes 320x320 inputs only
    project = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "serve.py", *flags, "--port", str(serve_kit.free_port()), "--project", str(project)],
                          capture_output=True, text=True, cwd=tools.repo_root, timeout=120)
    tools.assert_one_line_error(proc)
    assert not project.exists() or list(project.iterdir()) == []


# --- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize("given, env, said", [
    ("", None, "--token is empty"),  # would have turned the check off
    (None, "", "$MASKDET_TOKEN is empty"),
    ("pässwort", None, "printable ASCII"),  # a header carries it as Latin-1 bytes: it never matched
    ("s3cret\t", None, "printable ASCII"),
    (" s3cret", None, "space"),  # a header's value is read without the spaces around it
    ("s3cret ", None, "space"),
    (None, " s3cret", "space"),
])
def test_a_token_that_would_mean_no_token_or_could_never_match_is_refused_before_the_model_loads(tools, tmp_path, given,
                                                                                                 env, said):
    argv = [sys.executable, "serve.py", "--weights", str(tmp_path / "not-loaded-yet.onnx"), "--project", str(tmp_path / "runs")]
    if given is not None:
        argv += [f"--token={given}"]
    environment = {k: v for k, v in os.environ.items() if k != "MASKDET_TOKEN"}
    if env is not None:
        environment["MASKDET_TOKEN"] = env
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tools.repo_root, timeout=60, env=environment)
    line = tools.assert_one_line_error(proc, said)
    assert "not-loaded-yet" not in line
    assert not (tmp_path / "runs").exists()


# --- what it prints -------------------------------------------------------------------------------


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_address_is_printed_in_brackets_as_a_browser_takes_it(start_server):
    server = start_server("--host", "::1")
    url = f"http://[::1]:{server.port}/"
    assert f"open {url}" in server.process.stdout
    assert httpx.get(f"{url}api/health").status_code == 200


def test_with_db_the_banner_names_the_fleet_page(start_server, tmp_path):
    from maskdet.fleet.store import Store

    db = tmp_path / "fleet.db"
    Store.open(db).close()
    server = start_server("--db", db)
    banner = next(line for line in server.process.stdout.splitlines() if "open http://" in line)
    assert "/fleet" in banner, banner
    assert httpx.get(f"{server.url}/fleet").status_code == 200


def test_help_shows_the_project_folder_as_the_readme_does_not_this_checkouts_path(tools):
    proc = subprocess.run([sys.executable, "serve.py", "--help"], capture_output=True, text=True, cwd=tools.repo_root, timeout=60)
    assert proc.returncode == 0, proc.stderr
    project = proc.stdout[proc.stdout.index("\n  --project PROJECT"):proc.stdout.index("\n  --name NAME")]
    assert "runs/serve" in " ".join(project.split()), project
    assert str(tools.repo_root) not in proc.stdout
