"""How far monitor.py goes on this machine: live cameras at 2 fps on 1 and 2 workers, archive throughput on
1 and 2 workers against detect.py on the same videos one after another, and Ray's own cost per frame.

    python bench/fleet_speed.py [--cameras 4] [--seconds 30] [--json bench/fleet_speed.json]

Everything runs here, on 127.0.0.1: ffmpeg sends the live cameras over UDP, Ray is started for each run.
Figures are wall time, and CPU time where it can be counted: detect.py's whole, the Ray runs' outside the
workers (the driver and Ray's services: Ray's overhead); the workers' own CPU is the per-frame step measured
in one process. The CPU is named.
"""

from __future__ import annotations

import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import cpu_name, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list, timeout: float = 900) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of a command and the children it waited for (Ray's workers are not among them)."""
    c0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{proc.stderr[-2000:]}")
    return wall, cpu, proc


def make_videos(folder: Path, count: int, seconds: float) -> list[Path]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("detect_kit", ROOT / "tests" / "inference" / "conftest.py")
    kit = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = kit
    spec.loader.exec_module(kit)  # the test suite's synthetic scenes with faces
    write_video = kit.write_video
    folder.mkdir(parents=True, exist_ok=True)
    return [write_video(folder / f"cam{i}.mp4", frames=int(seconds * 10), size=(640, 480), fps=10.0) for i in range(count)]


def archive(videos: Path, workers: int, work: Path) -> tuple[float, float, int]:
    db = work / f"archive{workers}.db"
    defaults = work / "all_frames.yaml"
    defaults.write_text("defaults:\n  fps: 10\n", encoding="utf-8")  # every frame, as detect.py reads them
    wall, cpu, proc = timed([sys.executable, ROOT / "monitor.py", defaults, "--archive", videos, "--workers", workers, "--db", db])
    frames = sqlite3.connect(db).execute("SELECT SUM(frames) FROM videos").fetchone()[0]
    return wall, cpu, frames


def detect_one_after_another(videos: list[Path], work: Path) -> tuple[float, float]:
    wall = cpu = 0.0
    for video in videos:
        w, c, _ = timed([sys.executable, ROOT / "detect.py", "--source", video, "--nosave", "--quiet", "--project", work / "detect"])
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def in_process_ms_per_frame(video: Path) -> float:
    """The per-frame step alone (decode, detect, track, people) in this process: no Ray."""
    from maskdet.fleet.cameras import Camera, FleetDefaults
    from maskdet.fleet.worker import CameraWorker

    worker = CameraWorker(FleetDefaults(fps=10))
    t0 = time.perf_counter()
    result = worker.run_video(Camera("bench", str(video), fps=10))
    return (time.perf_counter() - t0) * 1000 / result["frames"]


def ray_call_ms() -> float:
    """Ray's cost per frame in a live fleet: one actor call and its result per frame (median of 200)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        @ray.remote(num_cpus=1)
        class Echo:
            def step(self, camera: dict) -> dict:
                return {"camera": camera["name"], "people": [], "alerts": [], "state": "live"}

        echo = Echo.remote()
        ray.get(echo.step.remote({"name": "warm"}))
        times = []
        for i in range(200):
            t0 = time.perf_counter()
            ray.get(echo.step.remote({"name": f"cam{i}"}))
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        ray.shutdown()


def live(videos: list[Path], workers: int, seconds: float, work: Path) -> tuple[float, float, float]:
    """N cameras sent in real time over UDP for `seconds`; (frames/s per camera achieved, wall, CPU)."""
    lines = ["defaults:", "  fps: 2", "cameras:"]
    ports = [32000 + i for i in range(len(videos))]
    for i, port in enumerate(ports):
        lines += [f"  - name: cam{i}", f"    source: udp://127.0.0.1:{port}", "    site: bench"]
    cameras = work / f"live{workers}.yaml"
    cameras.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = work / f"live{workers}.db"
    senders = [subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                                 "-i", str(v), "-an", "-c:v", "mpeg1video", "-r", "25", "-q:v", "3", "-g", "5", "-f", "mpegts",
                                 f"udp://127.0.0.1:{port}?pkt_size=1316"]) for v, port in zip(videos, ports)]
    try:
        wall, cpu, _ = timed([sys.executable, ROOT / "monitor.py", cameras, "--workers", workers, "--db", db,
                              "--duration", seconds])
    finally:
        for s in senders:
            s.kill()
            s.wait()
    frames = sqlite3.connect(db).execute("SELECT SUM(frames) FROM cameras").fetchone()[0]
    return frames / seconds / len(videos), wall, cpu


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--cameras", type=number(int, 1, 64), default=4, help="live cameras (and archive videos)")
    p.add_argument("--seconds", type=number(float, 1, 3600), default=30.0, help="length of each live run and of each video")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise UserError("needs ffmpeg on the PATH (Debian: apt install ffmpeg)")
    print(f"CPU: {cpu_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        videos = make_videos(work / "videos", args.cameras, args.seconds)
        ms = in_process_ms_per_frame(videos[0])
        print(f"per-frame step in one process (640x480, decode + detect + track): {ms:.0f} ms/frame "
              f"-> {1000 / ms:.1f} frames/s per core")
        ray_ms = ray_call_ms()
        print(f"Ray round trip per frame (actor call + result, median of 200): {ray_ms:.2f} ms")
        figures = {"cpu": cpu_name(), "cameras": args.cameras, "seconds": args.seconds,
                   "step_ms_per_frame": round(ms, 1), "ray_round_trip_ms": round(ray_ms, 3), "live": {}, "archive": {}}
        for workers in (1, 2):
            fps, wall, cpu = live(videos, workers, args.seconds, work)
            figures["live"][workers] = {"fps_per_camera": round(fps, 2), "wall_s": round(wall, 1),
                                        "cpu_s_outside_workers": round(cpu, 1)}
            print(f"live: {args.cameras} cameras asked for 2 fps on {workers} worker(s): {fps:.2f} frames/s per camera "
                  f"({fps * args.cameras:.1f} in all); run {wall:.0f} s wall, {cpu:.0f} s CPU outside the workers")
        results = {}
        for workers in (1, 2):
            wall, cpu, frames = archive(work / "videos", workers, work)
            results[workers] = frames / wall
            figures["archive"][workers] = {"frames": frames, "wall_s": round(wall, 1), "fps": round(frames / wall, 2),
                                           "cpu_s_outside_workers": round(cpu, 1)}
            print(f"archive on {workers} worker(s): {frames} frames in {wall:.1f} s wall ({frames / wall:.1f} frames/s), "
                  f"{cpu:.0f} s CPU outside the workers, Ray start included")
        wall, cpu = detect_one_after_another(videos, work)
        frames = sum(int(args.seconds * 10) for _ in videos)
        figures["detect_py"] = {"frames": frames, "wall_s": round(wall, 1), "fps": round(frames / wall, 2),
                                "cpu_s": round(cpu, 1)}
        figures["archive_speedup_vs_detect_py"] = {w: round(results[w] / (frames / wall), 2) for w in (1, 2)}
        print(f"detect.py one video after another: {frames} frames in {wall:.1f} s wall ({frames / wall:.1f} frames/s), "
              f"{cpu:.0f} s CPU")
        print(f"archive speed-up over detect.py: {results[1] / (frames / wall):.2f}x (1 worker), "
              f"{results[2] / (frames / wall):.2f}x (2 workers)")
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
