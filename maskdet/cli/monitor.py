"""python monitor.py cameras.yaml: many cameras, many sites, on Ray workers, into one store."""

from __future__ import annotations

import os
import re
import sys
import threading
import time

from maskdet.cli import make_parser
from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError, printable, require_modules
from maskdet.fleet.store import check_target, is_postgres
from maskdet.settings import PRIVACY_LEVELS, parse_duration, parse_period

DEFAULT_DB = PROJECT_ROOT / "runs" / "fleet" / "fleet.db"

EXAMPLES = """cameras file (YAML):
  defaults:                      # for every camera; all optional
    model: models/best.onnx      # relative to this file, as video sources are
    fps: 2                       # frames sampled per camera per second (the newest each time)
    alert: [without_mask]        # verdicts that raise an alert, once per person
    alert_after: 2               # seconds the verdict must hold first
    webhook: https://host/hook   # alerts POSTed here from a background queue, with retries
    down_after: 30               # seconds without frames before a camera shows as down
    privacy: blur                # blur (default), counts or off; see --privacy
    period: 20m                  # privacy counts: the length of a row of counts (2m to 7d)
    tile: 0                      # sliced inference, tile side in pixels (0 = off): see the camera below
    augment: false               # true: the mirror image too, boxes fused (more faces found, twice the CPU)
  cameras:
    - name: door-1
      source: rtsp://10.0.0.5/stream1   # or http(s)://..., a video file, a webcam index
      site: hq
      zone: entrance
      line: 0,0.6,1,0.6                 # its own counting line (optional)
      alert: [without_mask, mask_weared_incorrect]
      alert_after: 3
    - name: concourse
      source: rtsp://10.0.0.6/stream1
      tile: 480                         # far from the faces: also look at 480-px tiles, so small faces
                                        # keep their size (frames no larger are not cut; ~16 inferences)

examples:
  python monitor.py cameras.yaml                          # a local Ray, one worker per core, runs/fleet/fleet.db
  python monitor.py cameras.yaml --workers 2 --db postgresql://maskdet@dbhost/fleet
  python monitor.py cameras.yaml --ray 10.0.0.2:6379      # join a running Ray cluster (ray start --head)
  python monitor.py --archive recordings/ --workers 2     # recorded videos, spread over the workers
  python monitor.py cameras.yaml --privacy counts --period 20m   # counts per 20 minutes, nothing per person
  python monitor.py cameras.yaml --check                  # only check the cameras file
  python serve.py --db runs/fleet/fleet.db                # the fleet page: http://127.0.0.1:8000/fleet

Each camera is sampled at its fps, the newest frame each time; a camera that drops is reconnected with
backoff and never holds up the others. A worker that dies is restarted by Ray and its cameras resume.
--archive (or a cameras file that lists only video files): a rerun skips the videos already done and
redoes one that was cut; --duration and --retain are for live cameras only.

privacy: the workers keep no picture at all. "blur" (the default) stores one row per person (verdict,
times, line crossings, no image) and alerts by track; "counts" (France's decree 2021-269) stores only
people by verdict per camera and period and alerts with no track (a random alert id), never a row per
person; "off" is "blur" without blurring the frames the step sees.

exit status:
  0    stopped (Ctrl-C or SIGTERM on a live fleet, or every video done), after the summary; the store is consistent
  1    done, but some videos could not be read, or some cameras gave no frame at all (named after the summary)
  2    nothing was started: a bad argument or cameras file (one line per mistake)
  130  an archive run stopped by Ctrl-C or SIGTERM before every video was done (a rerun goes on from there)
"""


def store_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a store raises when its database fails under it."""
    import sqlite3

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    try:
        import psycopg

        errors += (psycopg.Error,)
    except ModuleNotFoundError:
        pass
    return errors


def parse_stop_after(value: str) -> float:
    """--duration: a number of seconds (0: until Ctrl-C), or a duration with its unit as --retain and --period take."""
    try:
        seconds = float(value)
    except ValueError:
        return parse_duration(value, "--duration")
    if seconds == 0:
        return 0.0
    if not seconds > 0:  # negative or NaN
        raise UserError("--duration must be 0 (until Ctrl-C), a number of seconds or a duration such as 20m or 8h")
    return parse_duration(seconds, "--duration", minimum_s=0.1)


RAY_ADDRESS = re.compile(r"\[(?P<ipv6>[0-9A-Fa-f:.]+)\]:(?P<port6>\d{1,5})|(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d{1,5})")


def parse_ray_address(text: str) -> tuple[str, int]:
    """--ray: the host:port of a running cluster's head (`ray start --head` prints it), an IPv6 address as
    [addr]:port; anything else is one line now, not Ray's traceback later."""
    match = RAY_ADDRESS.fullmatch(text.strip())
    if not match:
        raise UserError(f"--ray takes HOST:PORT of a running Ray cluster's head (such as 10.0.0.2:6379), not {text!r}")
    port = int(match.group("port6") or match.group("port"))
    if not 1 <= port <= 65535:
        raise UserError(f"--ray {text}: the port must be between 1 and 65535")
    return match.group("ipv6") or match.group("host"), port


def live_only_flags(retain_s: float | None, duration_s: float, run: str) -> None:
    """--retain and --duration are for live cameras: refused for a run of recorded videos (`run` says which kind)."""
    if retain_s is not None:  # an archive is on its videos' own clock: "older than" would delete it
        raise UserError(f"--retain prunes a live fleet's store while it runs: not with {run}")
    if duration_s:
        raise UserError(f"--duration stops a live fleet: not with {run} (it ends when every video is done; "
                        "Ctrl-C stops it, and a rerun goes on)")


def main(argv: list[str] | None = None) -> int:
    p = make_parser("monitor.py", "Watch many cameras at many sites: people counted, who wears a mask, alerts, one\n"
                    "store for all of it. Camera workers are Ray actors, each with one copy of the model.", EXAMPLES)
    p.add_argument("cameras", nargs="?", default=None, help="the cameras file (YAML; see below)")
    p.add_argument("--archive", default=None, metavar="DIR",
                   help="process the recorded videos under DIR instead of live cameras (defaults from the cameras file)")
    p.add_argument("--workers", type=int, default=None, help="camera workers, each one model on one core (default: one per core)")
    p.add_argument("--ray", default=None, metavar="HOST:PORT",
                   help="join this running Ray cluster (host:port of `ray start --head`; refused if nothing answers there "
                        "within 5 s; a cluster with token authentication needs RAY_AUTH_MODE=token and its token in "
                        "RAY_AUTH_TOKEN); default: a local Ray for this run")
    p.add_argument("--db", default=str(DEFAULT_DB), metavar="PATH_OR_URL",
                   help="the store: an SQLite file, or postgresql://user@host/dbname")
    p.add_argument("--duration", default="0", metavar="DURATION",
                   help="live cameras: stop by itself after this long (seconds, or 30m, 8h...; 0 = until Ctrl-C)")
    p.add_argument("--privacy", default=None, choices=PRIVACY_LEVELS,
                   help="what the store keeps of the people seen: blur (rows per person, no picture), counts (people by "
                        "verdict per --period only, alerts without a track) or off (default: the cameras file's, else blur)")
    p.add_argument("--period", default=None, metavar="DURATION",
                   help="with --privacy counts: the length of a row of counts, aligned to UTC (20m, 1h...; 2 minutes to "
                        "7 days: a shorter row with one person in it is that person; default: the cameras file's, else 20m)")
    p.add_argument("--retain", default=None, metavar="DURATION",
                   help="live cameras: delete people, alerts, per-minute counts and periods older than this from the store "
                        "(72h, 7d, 30m...), at start and every quarter of it while running (default: keep everything)")
    p.add_argument("--check", action="store_true", help="only check the cameras file, then exit")
    args = p.parse_args(argv)
    retain_s = parse_duration(args.retain, "--retain") if args.retain is not None else None
    duration_s = parse_stop_after(args.duration)
    ray_address = parse_ray_address(args.ray) if args.ray is not None else None

    from dataclasses import replace

    from maskdet.fleet.cameras import CamerasFileError, archive_fleet, down_after_s, read_fleet

    period_s = parse_period(args.period, "--period") if args.period is not None else None
    if args.cameras is None and args.archive is None:
        raise UserError("give a cameras file, or --archive DIR (with an optional cameras file for the defaults)")
    if args.workers is not None and not 1 <= args.workers <= 1024:
        raise UserError("--workers must be between 1 and 1024")
    if args.archive:  # before the folder is read (see live_only_flags)
        live_only_flags(retain_s, duration_s, "--archive")
    check_target(args.db)  # mysql://... is one line now, not a local file named after the URL
    try:
        fleet = read_fleet(args.cameras, archive=bool(args.archive)) if args.cameras else None
        if args.archive:
            fleet = archive_fleet(args.archive, fleet.defaults if fleet else None)
    except CamerasFileError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.privacy or period_s:
        overrides = {"privacy": args.privacy, "period": int(period_s) if period_s else None}
        fleet = replace(fleet, defaults=replace(fleet.defaults, **{k: v for k, v in overrides.items() if v is not None}))
    if period_s and fleet.defaults.privacy != "counts":
        raise UserError("--period is the length of a row of counts: it needs --privacy counts (or privacy: counts in the file)")
    videos = [cam for cam in fleet.cameras if cam.kind == "video"]
    if videos and len(videos) < len(fleet.cameras):  # a live run never ends; videos do: one kind per run
        live = next(cam for cam in fleet.cameras if cam.kind != "video")
        raise UserError(f"mixes live cameras ({live.name}, ...) and video files ({videos[0].name}: {videos[0].source}, ...): "
                        "a run is one or the other; run the live cameras from this file, and the videos with "
                        "--archive DIR (a folder of them)", fleet.path)
    archive = not fleet.live  # --archive, or a cameras file of video files only: the flags go by what the fleet is
    if archive:
        live_only_flags(retain_s, duration_s, "recorded videos (this cameras file lists only video files)")
    if args.check:  # the model too: a path that is wrong would otherwise pass as OK
        from maskdet.fleet.worker import load_model
        from maskdet.models import default_weights

        detector = load_model(fleet.defaults)
        print(f"{fleet.path}: {len(fleet.cameras)} cameras, {len({c.site for c in fleet.cameras})} sites, model "
              f"{fleet.defaults.model or default_weights()} ({detector.imgsz} px): OK")
        return 0

    require_modules("monitor.py", "ray", *(("psycopg",) if is_postgres(args.db) else ()))
    from maskdet.fleet.runner import check_ray_head, make_workers, run_archive, run_live, start_ray, stop_on_signals
    from maskdet.fleet.store import Store
    from maskdet.fleet.worker import load_model
    from maskdet.inference.sources import quiet_opencv_logs

    if ray_address:
        check_ray_head(ray_address)  # before anything starts: nothing there is one line in seconds, not a hang
    quiet_opencv_logs()
    load_model(fleet.defaults)  # a bad model is one line now, not a worker crashing in a loop
    if not is_postgres(args.db):
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    store = Store.open(args.db, writer=True)  # refused while another run writes it: both would count everyone
    workers_n = args.workers or os.cpu_count() or 1
    workers_n = min(workers_n, len(fleet.cameras))

    def log(line: str) -> None:
        print(printable(line), file=sys.stderr if line.startswith(("warning", "note", "skipped")) else sys.stdout,
              flush=True)  # camera names and URLs come from outside

    stop = threading.Event()
    stop_on_signals(stop)
    try:
        started_ray = start_ray(ray_address, workers_n, log)
    except BaseException:
        store.close()
        raise
    stop_on_signals(stop)  # again: ray.init replaced our SIGTERM handler with an exit on the spot
    import ray

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if not archive:
            store.register_cameras(fleet.cameras, {cam.name: down_after_s(cam, fleet.defaults) for cam in fleet.cameras})
        workers = make_workers(fleet, workers_n)
        if duration_s:  # counted from when every worker has its model loaded
            timer = threading.Timer(duration_s, stop.set)
            timer.daemon = True
            timer.start()
        print(f"monitor: {len(fleet.cameras)} {'videos' if archive else 'cameras'} on {workers_n} worker(s) "
              f"(Ray {'at ' + args.ray.strip() if args.ray else 'started for this run'}), store {store.where}"
              + ("" if archive else "; Ctrl-C stops"), flush=True)
        if archive:
            totals = run_archive(fleet, store, workers, log, stop)
        else:
            totals = run_live(fleet, store, workers, log, stop, retain_s)
    except store_errors() as exc:  # the database went away or its disk is full: one line, what was written is kept
        raise UserError(f"the store failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                        "everything written before is kept", store.where) from None
    finally:
        if started_ray:
            ray.shutdown()
    wall = time.perf_counter() - t0
    frames = sum(totals.frames.values())
    summary = store.summary()
    store.close()
    print()
    if archive:
        copies = f", {totals.copies} the same as another here (counted once)" if totals.copies else ""
        left = len(fleet.cameras) - totals.videos - totals.already_done - totals.copies - len(totals.skipped)
        cut = f", {left} left for a rerun" if totals.interrupted and left > 0 else ""
        print(f"videos: {totals.videos} done this run, {totals.already_done} already done (skipped){copies}, "
              f"{len(totals.skipped)} could not be read (failed){cut}; {frames} frames in {wall:.1f} s "
              f"({frames / wall if wall else 0:.1f} frames/s)")
    else:
        this_run = {c.name for c in fleet.cameras}  # the store also lists cameras of earlier runs' files
        for cam in summary["cameras"]:
            if cam["name"] in this_run:
                print(f"{cam['name']} ({cam['site']}/{cam['zone']}): {totals.frames[cam['name']]} frames this run, "
                      f"{cam['people_last_hour']} people in the last hour")
        silent = [c.name for c in fleet.cameras if not totals.frames[c.name]]
        if silent and not totals.interrupted:
            totals.skipped.append(f"{', '.join(silent)}: not one frame this run (check the source, or the camera)")
        print(f"frames: {frames} in {wall:.1f} s ({frames / wall if wall else 0:.1f} frames/s); "
              f"worker restarts: {totals.restarts}")
    counts_only = fleet.defaults.privacy == "counts"
    print(f"people: {totals.people} {'counted per period (privacy counts: no row per person)' if counts_only else 'stored'} "
          f"this run; alerts: {totals.alerts} stored this run; driver CPU {time.process_time() - c0:.1f} s")
    for line in totals.skipped:
        print(f"skipped: {printable(line)}", file=sys.stderr)
    print(f"store: {store.where} (python serve.py --db {store.where} shows the fleet page)")
    if totals.interrupted:
        print("interrupted: the videos done are stored; a rerun does the rest", file=sys.stderr)
        return 130
    return 1 if totals.skipped else 0
