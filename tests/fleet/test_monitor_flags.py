"""monitor.py's flags are never silently ignored: --retain and --duration are for a live fleet and refused with
--archive or a cameras file of video files only; --duration takes the durations --retain and --period take (20m,
8h), and plain seconds still; --ray is HOST:PORT, an address where no Ray cluster answers is refused in seconds,
and a cluster with token authentication is joined with its token or refused in one line naming it. SIGTERM ends a run as Ctrl-C does, and the driver sleeps while no camera is due."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from maskdet.fleet.cameras import Camera

ROOT = Path(__file__).resolve().parents[2]


def monitor(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "monitor.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_retain_and_duration_are_refused_with_an_archive(tmp_path):
    (tmp_path / "recordings").mkdir()
    for args, line in ((["--retain", "1h"], "error: --retain prunes a live fleet's store while it runs: not with --archive"),
                       (["--duration", "5"], "error: --duration stops a live fleet: not with --archive (it ends when every "
                                             "video is done; Ctrl-C stops it, and a rerun goes on)")):
        proc = monitor("--archive", tmp_path / "recordings", "--db", tmp_path / "fleet.db", *args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert proc.stderr.strip().splitlines() == [line]
        assert not (tmp_path / "fleet.db").exists()


def test_duration_takes_units_like_retain_and_plain_seconds(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    for value in ("20m", "1.5h", "30", "0"):
        proc = monitor(cameras, "--duration", value, "--check", cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.strip().endswith(": OK"), (value, proc.stderr[-3000:])
    for value, line in (("2 weeks", "error: --duration must be a number and a unit (s, m, h or d), such as 72h or 20m, "
                                    "not '2 weeks'"),
                        ("-1", "error: --duration must be 0 (until Ctrl-C), a number of seconds or a duration such as 20m or 8h")):
        proc = monitor(cameras, "--duration", value, "--check", cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [line], (value, proc.stderr[-3000:])


@pytest.fixture(scope="module")
def dead_camera_run(netns, tmp_path_factory) -> subprocess.CompletedProcess:
    """One live run of 10 s (Ray's start is most of a run's time, so the checks below share it): its one camera
    never answers and is sampled every 5 s; the store holds a camera of an earlier cameras file; and a `ray start`
    left its (stale) address in Ray's temp folder."""
    from maskdet.fleet.store import Store

    tmp_path = tmp_path_factory.mktemp("dead-camera")
    store = Store.open(tmp_path / "fleet.db")
    store.register_cameras([Camera("old-cam", "rtsp://10.0.0.9/gone")])  # from an earlier cameras file
    store.close()
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("defaults:\n  fps: 0.2\ncameras:\n  - {name: dead-cam, source: 'rtsp://127.0.0.1:9/nothing'}\n",
                       encoding="utf-8")
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:63790", encoding="utf-8")  # nothing there
    home = tmp_path / "home"  # where the local Ray writes its token (~/.ray), not the tester's own home
    home.mkdir()
    try:
        proc = netns.run([sys.executable, ROOT / "monitor.py", cameras, "--db", tmp_path / "fleet.db", "--duration", "10",
                          "--workers", "1"], cwd=tmp_path, timeout=300,
                         env={**os.environ, "RAY_TMPDIR": str(ray_tmp), "HOME": str(home)})
    finally:
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)
    proc.home = home
    return proc


def test_a_live_camera_that_gives_no_frame_at_all_is_named_and_the_exit_status_is_1(dead_camera_run):
    """A wrong address or a dead camera: the run goes on for the others, but it does not end as if all was well.
    Cameras of earlier runs still in the store are not listed as this run's."""
    proc = dead_camera_run
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "dead-cam (/): 0 frames this run" in proc.stdout and "old-cam" not in proc.stdout
    assert "skipped: dead-cam: not one frame this run" in proc.stderr


def test_without_ray_a_run_starts_its_own_ray_even_where_a_ray_start_left_its_address(dead_camera_run):
    """`ray start` leaves the cluster's address in Ray's temp folder (ray_current_cluster), and ray.init() would
    join it, or fail on a stale one: without --ray the run's Ray is its own."""
    proc = dead_camera_run
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1 and "dead-cam (/): 0 frames this run" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_the_token_a_local_ray_writes_is_left_readable_by_its_owner_alone(dead_camera_run):
    """Ray writes ~/.ray/auth_token (the key to run code on a cluster that takes it) readable by every user."""
    token = dead_camera_run.home / ".ray" / "auth_token"
    if not token.exists():
        pytest.skip("this Ray writes no token file for a local cluster (token authentication came with Ray 2.52)")
    assert token.stat().st_mode & 0o777 == 0o600
    assert f"note: Ray's token file {token} was readable by other users: now by you alone (chmod 600)" in \
        dead_camera_run.stdout + dead_camera_run.stderr


def test_the_driver_sleeps_while_no_camera_is_due(dead_camera_run):
    """A camera sampled every 5 s (the worker waits at most 1 s for its frame): the driver has nothing in flight
    most of the time, and must not spin a core then (it used nearly one CPU second per second)."""
    proc = dead_camera_run
    cpu = float(re.search(r"driver CPU ([\d.]+) s", proc.stdout).group(1))
    assert cpu < 2.5, proc.stdout


def test_a_cameras_file_of_video_files_only_is_recorded_videos_and_refuses_the_live_flags(netns, fleet_kit, tmp_path):
    """The checks go by what the fleet is, not by whether --archive was typed: such a file runs as an archive."""
    clip = fleet_kit.write_camera_video(tmp_path / "yard.mp4", {}, [], 2.0, fleet_kit.background)
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(f"cameras:\n  - {{name: yard, source: '{clip}'}}\n", encoding="utf-8")
    db = tmp_path / "fleet.db"
    run = "recorded videos (this cameras file lists only video files)"
    for args, line in ((["--retain", "1h"], f"error: --retain prunes a live fleet's store while it runs: not with {run}"),
                       (["--duration", "5"], f"error: --duration stops a live fleet: not with {run} (it ends when every "
                                             "video is done; Ctrl-C stops it, and a rerun goes on)")):
        proc = netns.run([sys.executable, ROOT / "monitor.py", cameras, "--db", db, "--workers", "1", *args], cwd=tmp_path,
                         timeout=300)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [line], proc.stdout[-2000:] + proc.stderr[-3000:]
        assert not db.exists()


def test_a_ray_address_is_host_and_port_and_is_checked_before_anything_starts(tmp_path):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://10.0.0.5/s'}\n", encoding="utf-8")
    for value, line in (("foo", "error: --ray takes HOST:PORT of a running Ray cluster's head (such as 10.0.0.2:6379), not 'foo'"),
                        ("ray://10.0.0.2:10001", "error: --ray takes HOST:PORT of a running Ray cluster's head (such as "
                                                 "10.0.0.2:6379), not 'ray://10.0.0.2:10001'"),
                        ("10.0.0.2:99999", "error: --ray 10.0.0.2:99999: the port must be between 1 and 65535"),
                        ("10.0.0.2:0", "error: --ray 10.0.0.2:0: the port must be between 1 and 65535")):
        proc = monitor(cameras, "--ray", value, "--db", tmp_path / "fleet.db", cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [line], (value, proc.stderr[-3000:])
        assert not (tmp_path / "fleet.db").exists()


LISTEN = ("import socket, time; server = socket.create_server(('127.0.0.1', 6398)); print('listening', flush=True); "
          "time.sleep(600)")


def test_a_ray_address_where_no_ray_cluster_answers_is_one_line_in_seconds(netns, fleet_kit, tmp_path):
    """Nothing listening there (it hung for minutes), or a port that answers but is no Ray head."""
    kit = fleet_kit
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://127.0.0.1:9/s'}\n", encoding="utf-8")
    other = kit.Background(netns.argv([sys.executable, "-c", LISTEN]), tmp_path / "logs", "not-ray")
    try:
        kit.wait_for(lambda: "listening" in other.stdout or not other.running(), 30, message="the other server")
        for address, line, within in (
                ("127.0.0.1:6399", "error: --ray: no Ray cluster answers at 127.0.0.1:6399 (Connection refused): start one "
                                   "there with `ray start --head`, or leave --ray out for a local Ray", 10),
                ("127.0.0.1:6398", "error: --ray: cannot join the Ray cluster at 127.0.0.1:6398: Failed to connect to Ray "
                                   "cluster at 127.0.0.1:6398", 45)):
            started = time.monotonic()
            proc = netns.run([sys.executable, ROOT / "monitor.py", cameras, "--ray", address, "--db", tmp_path / "fleet.db"],
                             cwd=tmp_path, timeout=240)
            assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [line], (address, proc.stderr[-3000:])
            assert time.monotonic() - started < within, address
    finally:
        other.stop()


def test_a_ray_cluster_with_token_authentication_is_joined_with_its_token_and_without_it_is_one_line(netns, tmp_path):
    """A real `ray start --head` with RAY_AUTH_MODE=token (Ray's default from 2.61): ray.init says only "Failed to
    connect" to a driver without the head's token, which would send the user looking for a network fault; the run
    names the token and where it goes instead. With it, the run joins the cluster, and the cluster is left up."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    ray = Path(sys.executable).with_name("ray")
    head_home, other_home = tmp_path / "head-home", tmp_path / "other-home"
    head_home.mkdir()
    other_home.mkdir()
    head_env = {**os.environ, "HOME": str(head_home), "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "token"}
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - {name: a, source: 'rtsp://127.0.0.1:9/s'}\n", encoding="utf-8")
    cluster = type(netns)()  # a namespace of its own: everything the head starts is stopped with it
    try:
        assert cluster.run([ray, "get-auth-token", "--generate"], env=head_env, timeout=120).returncode == 0
        token = (head_home / ".ray" / "auth_token").read_text(encoding="utf-8").strip()
        head = cluster.run([ray, "start", "--head", "--port", "6379", "--num-cpus", "1", "--include-dashboard=false"],
                           env=head_env, timeout=180)  # it returns once the head is up
        assert head.returncode == 0, head.stdout[-2000:] + head.stderr[-2000:]

        def join(**env) -> subprocess.CompletedProcess:
            driver_env = {name: value for name, value in os.environ.items() if not name.startswith("RAY_AUTH")}
            driver_env.update(HOME=str(other_home), RAY_TMPDIR=str(ray_tmp), **env)  # another machine: no token file
            return cluster.run([sys.executable, ROOT / "monitor.py", cameras, "--ray", "127.0.0.1:6379", "--db",
                                tmp_path / "fleet.db", "--duration", "1"], cwd=tmp_path, timeout=240, env=driver_env)

        where = "the head's token (`ray get-auth-token` on the head prints it) in RAY_AUTH_TOKEN or in ~/.ray/auth_token"
        for env, line in (({}, "error: --ray: the Ray cluster at 127.0.0.1:6379 uses token authentication: run monitor.py "
                                f"with RAY_AUTH_MODE=token and {where}"),
                          ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 32},
                           f"error: --ray: the Ray cluster at 127.0.0.1:6379 refused this machine's authentication token: "
                           f"give it {where}"),
                          ({"RAY_AUTH_MODE": "token"},
                           f"error: --ray: RAY_AUTH_MODE=token is set, but this machine has no Ray token: give it {where}")):
            proc = join(**env)
            assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [line], (env, proc.stderr[-3000:])
        proc = join(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        assert proc.returncode == 1 and "a (/): 0 frames this run" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        status = cluster.run([ray, "status", "--address", "127.0.0.1:6379"], env=head_env, timeout=120)
        assert status.returncode == 0, status.stderr[-2000:]  # a cluster joined with --ray is not stopped by the run
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)


def test_sigterm_ends_a_live_run_as_ctrl_c_does(netns, udp_cameras, fleet_kit, tmp_path, request):
    """README and --help: SIGTERM (a service manager's stop) counts the people in view, marks the cameras stopped,
    prints the summary and exits 0. Before its first frame a camera is connecting, never live; at the stop its
    last state is stopped (a step still in flight is taken before it)."""
    kit = fleet_kit
    (camera,) = udp_cameras([kit.write_camera_video(tmp_path / "cam.mp4", {}, [], 60.0, kit.background)])
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(f"defaults:\n  fps: 2\n  down_after: 30\ncameras:\n  - {{name: cam1, source: '{camera.url}'}}\n",
                       encoding="utf-8")
    db = tmp_path / "fleet.db"
    run = kit.Background(netns.argv([sys.executable, ROOT / "monitor.py", cameras, "--workers", "1", "--db", db]),
                         tmp_path / "logs", "monitor")
    request.addfinalizer(run.stop)

    def state() -> str | None:
        try:
            rows = kit.query(str(db), "SELECT state FROM cameras WHERE name = 'cam1'")
        except Exception:  # the store is not made yet
            return None
        return rows[0][0] if rows else None

    kit.wait_for(lambda: state() == "connecting" or not run.running(), 180, interval=0.2, message="the camera to be tried")
    assert run.running(), run.stderr[-3000:]
    watched_until = time.monotonic() + 4  # past the 2 s it used to be "live" with no frame, then "reconnecting"
    while time.monotonic() < watched_until:
        assert state() == "connecting", run.stdout[-2000:]
        time.sleep(0.2)
    camera.start()
    kit.wait_for(lambda: state() == "live", 30, interval=0.2, message="the camera live")

    os.kill(run.proc.pid, signal.SIGTERM)  # to monitor.py alone, as `kill PID` or a service manager sends it
    assert run.wait(timeout=90) == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, run.stderr[-3000:]
    assert re.search(r"^cam1 \(/\): [1-9]\d* frames this run", run.stdout, re.MULTILINE), run.stdout[-2000:]
    assert re.search(r"^frames: [1-9]\d* in ", run.stdout, re.MULTILINE) and "driver CPU" in run.stdout, run.stdout[-2000:]
    states = [line for line in run.stdout.splitlines() if line.startswith("cam1: ")]
    assert states[0] == "cam1: live" and states[-1] == "cam1: stopped" and states.count("cam1: stopped") == 1, states
    assert state() == "stopped"


def test_sigterm_ends_an_archive_run_as_ctrl_c_does(netns, fleet_kit, tmp_path):
    kit = fleet_kit
    folder = tmp_path / "recordings"
    folder.mkdir()
    kit.write_camera_video(folder / "long.mp4", {}, [], 300.0, kit.background)  # still running at the signal
    run = kit.Background(netns.argv([sys.executable, ROOT / "monitor.py", "--archive", folder, "--workers", "1",
                                     "--db", tmp_path / "fleet.db"]), tmp_path / "logs", "archive")
    try:
        kit.wait_for(lambda: "monitor: 1 videos" in run.stdout or not run.running(), 180, message="the run to start")
        assert run.running(), run.stderr[-3000:]
    finally:
        os.kill(run.proc.pid, signal.SIGTERM)
    assert run.wait(timeout=90) == 130, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "videos: 0 done this run, 0 already done (skipped), 0 could not be read (failed), 1 left for a rerun;" in run.stdout
    assert "interrupted: the videos done are stored; a rerun does the rest" in run.stderr
