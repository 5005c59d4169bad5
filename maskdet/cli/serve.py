"""python serve.py: the web page and HTTP API, on the same detector as detect.py."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
from pathlib import Path

from maskdet.cli import make_parser, run_name
from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError, require_modules
from maskdet.fileio import next_run_dir
from maskdet.models import default_weights
from maskdet.settings import SERVE_PRIVACY_LEVELS, TILE_RANGE, ServeSettings, default_of

SERVER_MODULES = ("fastapi", "uvicorn", "multipart", "av")

EXAMPLES = """examples:
  python serve.py                                   # http://127.0.0.1:8000/ : the page; /docs : the API
  python serve.py --port 8080 --workers 2 --conf 0.4
  python serve.py --host 0.0.0.0 --token s3cret     # reachable from the network, only with the token
  curl -F file=@photo.jpg http://127.0.0.1:8000/api/detect
  python serve.py --db runs/fleet/fleet.db          # + the fleet page of monitor.py at /fleet
  python serve.py --tile 640                        # camera frames and big photos: small faces found in tiles

Uploads, results and their folders (runs/serve/expN/<job id>/) are deleted --keep-minutes after
they were made (the oldest sooner past --max-saved-mb), and all of them when the server stops: Ctrl-C
or SIGTERM (kill, docker stop), which end with a summary and exit status 0. Folders that a server
stopped with kill -9 left are deleted by the next one once older than --keep-minutes.
"""

DEFAULT_PROJECT = "runs/serve"  # in the checkout, wherever serve.py is started from


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host as it goes in a URL to open: an IPv6 address in brackets, an any-address as the local one."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{shown}]" if ":" in shown else shown


def check_token(token: str | None, where: str) -> None:
    """A token that could never match, or that means no token at all, is refused at start: an empty one (which
    would turn the check off), one with characters an HTTP header does not carry as typed (non-ASCII, control
    characters), or one with spaces around it (a header's value is read without them)."""
    if token is None:
        return
    if token == "":
        raise UserError(f"{where} is empty: give a token, or leave {where} out to run without one")
    if not (token.isascii() and token.isprintable()):
        raise UserError(f"{where} must be printable ASCII (letters, digits, punctuation): other characters never "
                        "match in an Authorization header")
    if token != token.strip():
        raise UserError(f"{where} starts or ends with a space: it could never match (a header's value is read without them)")


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}): pass another --port or --host") from None


# flag: (lowest, highest, lowest allowed itself); every number a user gives is checked before anything starts
RANGES = {"port": (1, 65535, True), "conf": (0.0, 1.0, True), "iou": (0.0, 1.0, True), "imgsz": (32, 8192, True),
          "workers": (1, 64, True), "backlog": (0, 10_000, True), "max_upload_mb": (0.0, 10_240.0, False),
          "keep_minutes": (0.0, 525_600.0, False), "max_video_jobs": (1, 64, True), "max_live": (1, 1000, True),
          "header_timeout": (0.0, 3600.0, False), "live_timeout": (0.0, 3600.0, False),
          "send_timeout": (0.0, 3600.0, False), "max_saved_mb": (0.0, 1_048_576.0, False)}


def check_ranges(args) -> None:
    """A one-line error naming the first number out of its range (exit 2)."""
    smallest_tile, largest_tile = TILE_RANGE
    if args.tile and not smallest_tile <= args.tile <= largest_tile:
        raise UserError(f"--tile must be 0 (off) or {smallest_tile} to {largest_tile} pixels, got {args.tile}")
    for name, (low, high, low_included) in RANGES.items():
        value = getattr(args, name)
        if value is None:
            continue
        if not (low <= value <= high) or (value == low and not low_included) or value != value:  # value != value: NaN
            span = f"from {low:g} to {high:g}" if low_included else f"above {low:g} and at most {high:g}"
            raise UserError(f"--{name.replace('_', '-')} must be {span}, got {value:g}")


def build_parser():
    """serve.py's flags; the defaults of the ones that are settings are ServeSettings' (maskdet/settings.py)."""
    d = lambda name: default_of(ServeSettings, name)  # noqa: E731
    p = make_parser("serve.py", "A web page and a JSON API for mask detection: drop photos and videos, use the\n"
                    "camera, or POST images from another program. Same detector as detect.py.", EXAMPLES)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 makes it reachable from the network (use --token then)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--weights", default=None, help="model: OpenVINO folder, .onnx or .pt; default: models/best_int8_openvino_model when "
                   "openvino is installed, else models/best.onnx, else models/best.pt")
    p.add_argument("--conf", "--conf-thres", dest="conf", type=float, default=d("conf"), help="minimum confidence to keep a box")
    p.add_argument("--iou", "--iou-thres", dest="iou", type=float, default=d("iou"), help="NMS IoU threshold")
    p.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=int, default=d("imgsz"),
                   help="inference size in pixels (default: the model's own)")
    p.add_argument("--device", default=d("device"), help="'cpu', or a CUDA device such as '0'")
    p.add_argument("--tile", type=int, default=d("tile"), metavar="PX",
                   help="sliced inference for photos and frames larger than PX: also look at overlapping PX x PX tiles, so "
                        "small faces keep their size (about one inference per tile); 0 = off")
    p.add_argument("--augment", action="store_true", default=d("augment"),
                   help="test-time augmentation: the mirror image too, boxes fused (more faces found, twice the CPU)")
    p.add_argument("--workers", type=int, default=d("workers"),
                   help="models run at once (each a copy of the model)")
    p.add_argument("--backlog", type=int, default=d("backlog"),
                   help="requests that may wait for a worker; more get 503 + Retry-After (default: as many as --workers)")
    p.add_argument("--max-upload-mb", type=float, default=d("max_upload_mb"),
                   help="largest upload accepted, in MiB (1,048,576 bytes); bigger ones get 413")
    p.add_argument("--token", default=None,
                   help="require 'Authorization: Bearer TOKEN' on every API call (the page asks once); "
                        "default: $MASKDET_TOKEN, else none")
    p.add_argument("--keep-minutes", type=float, default=d("keep_minutes"),
                   help="delete uploads and results this long after they were made (all of them when the server stops)")
    p.add_argument("--max-saved-mb", type=float, default=d("max_saved_mb"),
                   help="MiB the results kept for download may take at once; past it the oldest are deleted early "
                        "(their links answer 404, expired)")
    p.add_argument("--max-video-jobs", type=int, default=d("max_video_jobs"), help="videos processed at once; more get 503 + Retry-After")
    p.add_argument("--max-live", type=int, default=d("max_live"),
                   help="live cameras (/api/live WebSockets) open at once; one more is closed with 1013 (try again later)")
    p.add_argument("--privacy", choices=SERVE_PRIVACY_LEVELS, default=d("privacy"),
                   help="blur: every face found is blurred in every picture served or kept, for every request "
                        "(and on the live camera page); off: a request may still ask for ?privacy=blur")
    p.add_argument("--header-timeout", type=float, default=d("header_timeout_s"), metavar="S",
                   help="seconds a client has to send a request's headers, from connecting or from the response "
                        "before; slower ones get 408 and are closed (a connection held open by a trickle of bytes)")
    p.add_argument("--live-timeout", type=float, default=d("live_timeout_s"), metavar="S",
                   help="seconds a live camera has to send each frame and read its answer; a quiet one is closed "
                        "(1001) and its --max-live slot freed (the page stops its camera and says why)")
    p.add_argument("--send-timeout", type=float, default=d("send_timeout_s"), metavar="S",
                   help="seconds a client may take nothing of what the server sends it (a response, a download, the "
                        "live camera's answers) while more waits to be sent, before its connection is dropped; a slow reader is "
                        "kept (Linux only)")
    p.add_argument("--project", default=None,
                   help=f"where run folders go (default: {DEFAULT_PROJECT}, in the checkout whatever the current folder)")
    p.add_argument("--name", type=run_name, default="exp", help="run folder name (exp, exp2, ... if it exists)")
    p.add_argument("--db", default=None, metavar="PATH_OR_URL",
                   help="monitor.py's store (SQLite file or postgresql:// URL): the fleet page at /fleet")
    return p


def stop_on(signum: int, _frame) -> None:
    """SIGTERM ends the server as Ctrl-C does: uvicorn shuts down gracefully, then calls this (it re-raises the
    signals it caught), and main() prints its summary and exits 0 instead of dying with 143."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    check_ranges(args)
    token, where = (args.token, "--token") if args.token is not None else (os.environ.get("MASKDET_TOKEN"), "$MASKDET_TOKEN")
    check_token(token, where)
    require_modules("serve.py", *SERVER_MODULES)
    check_port_free(args.host, args.port)
    if args.db:
        from maskdet.fleet.store import check_target

        check_target(args.db)  # mysql://...: not a store this reads, said as such (not "no such store")
    if args.db and not args.db.startswith(("postgresql://", "postgres://")):  # (PostgreSQL may come up later)
        if not os.path.isfile(args.db):
            raise UserError("no such store: monitor.py --db writes it", args.db)
        from maskdet.serving.fleet import check_store

        check_store(args.db)  # a text file or another program's database: one line now, not a page that fails
    signal.signal(signal.SIGTERM, stop_on)  # from here on, SIGTERM stops as Ctrl-C does

    import uvicorn

    from maskdet.serving.app import create_app
    from maskdet.serving.connection import SEND_TIMEOUT_SUPPORTED, deadline_protocol
    from maskdet.serving.jobs import sweep_earlier_runs
    from maskdet.serving.service import ServeSettings, Service

    project = Path(args.project) if args.project is not None else PROJECT_ROOT / DEFAULT_PROJECT
    # Results hold faces: what a server stopped with kill -9 left is not kept past --keep-minutes either.
    swept, runs_removed = sweep_earlier_runs(project, args.keep_minutes * 60)
    if swept or runs_removed:
        print(f"deleted {swept} job folder(s) older than --keep-minutes ({args.keep_minutes:g}) and {len(runs_removed)} "
              f"emptied run folder(s) that earlier servers left in {project} (stopped before they could delete them)", flush=True)
    weights = args.weights or default_weights(args.device)
    results_dir = next_run_dir(project, args.name)
    settings = ServeSettings(weights=weights, results_dir=results_dir,
                             conf=args.conf, iou=args.iou, imgsz=args.imgsz, device=args.device, tile=args.tile,
                             augment=args.augment, workers=args.workers,
                             backlog=args.backlog, max_upload_mb=args.max_upload_mb, token=token, keep_minutes=args.keep_minutes,
                             max_video_jobs=args.max_video_jobs, max_live=args.max_live, fleet_db=args.db,
                             privacy=args.privacy, header_timeout_s=args.header_timeout,
                             live_timeout_s=args.live_timeout, send_timeout_s=args.send_timeout, max_saved_mb=args.max_saved_mb)
    try:
        service = Service(settings)  # load the model now: a bad --weights is one line, not a server log
    except BaseException:
        try:
            results_dir.rmdir()  # a failed start leaves no run folder (the model loads before anything is put in it)
        except OSError:
            pass
        raise
    try:
        if not is_loopback(args.host) and not settings.token:
            print(f"warning: listening on {args.host} without --token: anyone on the network can use this server", flush=True)
        if not SEND_TIMEOUT_SUPPORTED:
            print("warning: --send-timeout needs Linux (TCP_INFO): here a client that reads nothing keeps its "
                  "connection; put a proxy with a send timeout in front", flush=True)
        fleet = "; fleet page: /fleet" if args.db else ""
        print(f"maskdet server ({settings.weights}, {service.pool.imgsz} px, {args.workers} worker(s)): "
              f"open http://{url_host(args.host)}:{args.port}/  (API docs: /docs{fleet}; Ctrl-C stops)", flush=True)
        server = uvicorn.Server(uvicorn.Config(create_app(settings, service), host=args.host, port=args.port,
                                               log_level="warning", access_log=False, ws_max_size=settings.live_frame_bytes,
                                               http=deadline_protocol(settings.header_timeout_s, settings.send_timeout_s)))
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn shuts down gracefully on Ctrl-C or SIGTERM, then re-raises it: not an error
            pass
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM):  # the last step is short: a second Ctrl-C does not cut it
            signal.signal(stop, signal.SIG_IGN)
        service.close()  # (done already by the app's shutdown, unless the server never started)
    print()
    for line in service.summary_lines():
        print(line)
    return 0
