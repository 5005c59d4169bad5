#!/usr/bin/env python3
"""Load test of serve.py: N clients send M photos in all to a real server on 127.0.0.1, then
detect.py runs on the same photos, for throughput side by side.

Bounded in count (--photos) and time (--time-limit). Clients honour 503 + Retry-After (the server's
bounded pool saying it is full) by waiting and sending again; any other error, or a 503 without
Retry-After, is counted as a failure. Reports p50/p95 latency of the answered requests (one
attempt) and per photo (first send to answer, waits included), throughput, the 503s, and the
server's memory (RSS) before and after.

The photos are Kaggle's (--kaggle: its fixed split's test, val, then train photos), or with --drawn
generated ones (no dataset needed; smaller JPEGs, so not the same figures).

    python bench/serve_load.py                        # 8 clients, 200 photos, models/best.onnx
    python bench/serve_load.py --clients 8 --photos 200 --workers 2 --json bench/serve_load.json
    python bench/serve_load.py --kaggle path/to/kaggle-facemask
    python bench/serve_load.py --drawn                # without the dataset
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchlib import add_kaggle_arg, cpu_name, kaggle_split, write_json  # noqa: E402

from maskdet.cli import ArgumentParser, HelpFormatter, number  # noqa: E402
from maskdet.errors import UserError, run_cli  # noqa: E402


def kaggle_stems(kaggle: Path, count: int) -> list[str]:
    """The first `count` photos of the Kaggle fixed split's test, val and train lists (a one-line error naming
    --kaggle when the folder or a list is not there)."""
    stems = []
    for split in ("test", "val", "train"):
        if len(stems) < count:
            stems += kaggle_split(kaggle, split, "--kaggle", "or --drawn for generated photos")
    if len(stems) < count:
        raise UserError(f"its splits/ list {len(stems)} photos, fewer than --photos {count}", kaggle)
    return stems[:count]


def gather_photos(folder: Path, count: int, kaggle: Path | None, stems: list[str]) -> str:
    """`count` photos in folder: the Kaggle ones named by `stems`, or with kaggle None drawn ones."""
    folder.mkdir(parents=True)
    if kaggle is not None:
        for i, stem in enumerate(stems):
            source = kaggle / "images" / f"{stem}.png"
            if not source.is_file():
                raise UserError("no such file (listed in its splits/)", source)
            shutil.copy(source, folder / f"{i:04d}_{stem}.png")
        return "Kaggle face-mask photos (PNG, mostly 400x~300)"
    import cv2

    sys.path.insert(0, str(ROOT / "tests"))
    from synthetic import make_sample

    for i in range(count):
        image, _ = make_sample.make_image(i, size=(480, 320))
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), image)
    return "drawn sample photos (480x320 JPEG, --drawn)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(args, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "serve.py"), "--port", str(port), "--weights", args.weights, "--workers", str(args.workers),
           "--project", str(work / "runs")]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    if "open http://" not in line:
        server.kill()
        raise SystemExit(f"serve.py did not start: {line}{server.stdout.read()[-2000:]}")
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=5).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("serve.py did not answer /api/health within 60 s")


def load(url: str, photos: list[Path], clients: int, time_limit: float, server_pid: int) -> dict:
    import httpx

    todo: queue.Queue[Path] = queue.Queue()
    for p in photos:
        todo.put(p)
    attempt_ms: list[float] = []
    photo_ms: list[float] = []
    stats = {"ok": 0, "busy_503": 0, "busy_without_retry_after": 0, "errors": 0, "error_samples": [],
             "rss_mib_every_50": [round(rss_mib(server_pid))]}
    lock = threading.Lock()
    stop_at = time.monotonic() + time_limit

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < stop_at:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                data = path.read_bytes()
                first = time.perf_counter()
                while time.monotonic() < stop_at:
                    t = time.perf_counter()
                    response = http.post(url + "/api/detect", files={"file": (path.name, data)})
                    done = time.perf_counter()
                    with lock:
                        if response.status_code == 200:
                            stats["ok"] += 1
                            attempt_ms.append((done - t) * 1e3)
                            photo_ms.append((done - first) * 1e3)
                            if stats["ok"] % 50 == 0:  # flat memory: the server's RSS as the photos go by
                                stats["rss_mib_every_50"].append(round(rss_mib(server_pid)))
                        elif response.status_code == 503:
                            stats["busy_503"] += 1
                            if "retry-after" not in response.headers:
                                stats["busy_without_retry_after"] += 1
                        else:
                            stats["errors"] += 1
                            stats["error_samples"] = (stats["error_samples"] + [f"{response.status_code} {response.text[:200]}"])[:5]
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("retry-after", "1")))

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else (values or [0])[0]

    return {**stats, "wall_s": round(wall, 2), "photos_per_s": round(stats["ok"] / wall, 2),
            "attempt_p50_ms": round(pct(attempt_ms, 50)), "attempt_p95_ms": round(pct(attempt_ms, 95)),
            "photo_p50_ms": round(pct(photo_ms, 50)), "photo_p95_ms": round(pct(photo_ms, 95)),
            "timed_out": time.monotonic() >= stop_at}


def run_detect(args, folder: Path, work: Path) -> dict:
    """detect.py on the same photos, annotated images written (as the server draws them too)."""
    cmd = [sys.executable, str(ROOT / "detect.py"), "--source", str(folder), "--weights", args.weights, "--quiet",
           "--project", str(work / "detect")]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.time_limit)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"detect.py failed: {proc.stderr[-2000:]}")
    fps_line = next(line for line in proc.stdout.splitlines() if " FPS" in line)
    return {"wall_s": round(wall, 2), "photos_per_s": round(args.photos / wall, 2),
            "photos_per_s_after_startup": float(fps_line.rsplit(":", 1)[1].split()[0])}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", default=str(ROOT / "models" / "best.onnx"), help="model for the server and detect.py")
    parser.add_argument("--clients", type=number(int, 1, 256), default=8, help="clients sending at once")
    parser.add_argument("--photos", type=number(int, 1, 100_000), default=200, help="photos sent in all")
    parser.add_argument("--workers", type=number(int, 1, 64), default=1, help="serve.py --workers")
    parser.add_argument("--time-limit", type=number(float, 1, 86_400), default=600,
                        help="stop sending after this many seconds")
    add_kaggle_arg(parser, "the photos of its fixed split are sent (splits/test.txt, val.txt, then train.txt)")
    parser.add_argument("--drawn", action="store_true",
                        help="send generated photos instead of the Kaggle ones (no dataset needed; not the same "
                             "figures)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    kaggle = None if args.drawn else Path(args.kaggle)
    stems = [] if kaggle is None else kaggle_stems(kaggle, args.photos)  # before the server starts

    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        work = Path(tmp)
        what = gather_photos(work / "photos", args.photos, kaggle, stems)
        photos = sorted((work / "photos").iterdir())
        server, url = start_server(args, work)
        try:
            served = load(url, photos, args.clients, args.time_limit, server.pid)
        finally:
            server.terminate()
            server.wait(30)
        detect = run_detect(args, work / "photos", work)

    result = {"cpu": cpu_name(), "photos": f"{len(photos)} {what}", "clients": args.clients, "workers": args.workers,
              "weights": args.weights, "server": served,
              "detect_py": detect,
              "ratio_vs_detect_py": round(served["photos_per_s"] / detect["photos_per_s"], 2)}
    print(json.dumps(result, indent=2))
    print(f"\nserve.py: {served['ok']} photos in {served['wall_s']} s = {served['photos_per_s']} photos/s; "
          f"per request p50 {served['attempt_p50_ms']} ms, p95 {served['attempt_p95_ms']} ms; "
          f"per photo (503 waits included) p50 {served['photo_p50_ms']} ms, p95 {served['photo_p95_ms']} ms; "
          f"{served['busy_503']} x 503 (all with Retry-After: {served['busy_without_retry_after'] == 0}), "
          f"{served['errors']} other errors; server RSS (MiB) at 0, 50, 100, ... photos: {served['rss_mib_every_50']}")
    print(f"detect.py: {detect['wall_s']} s = {detect['photos_per_s']} photos/s end to end "
          f"({detect['photos_per_s_after_startup']} after start-up); serve.py/detect.py {result['ratio_vs_detect_py']}x")
    if args.json:
        write_json(args.json, result)
    return 1 if served["errors"] or served["busy_without_retry_after"] or served["ok"] < len(photos) else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError is one line and exit 2, Ctrl-C exit 130
