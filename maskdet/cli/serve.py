"""python serve.py: the web page and HTTP API, on the same detector as detect.py."""

from __future__ import annotations

import ipaddress
import os
import socket

from maskdet.cli import CONFIDENCE, IMGSZ, IOU, make_parser, number
from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError, require_modules
from maskdet.fileio import next_run_dir

SERVER_MODULES = ("fastapi", "uvicorn", "multipart", "av")

EXAMPLES = """examples:
  python serve.py                                   # http://127.0.0.1:8000/ : the page; /docs : the API
  python serve.py --port 8080 --workers 2 --conf 0.4
  python serve.py --host 0.0.0.0 --token s3cret     # reachable from the network, only with the token
  curl -F file=@photo.jpg http://127.0.0.1:8000/api/detect

Uploads, results and their folders (runs/serve/expN/<job id>/) are deleted --keep-minutes after
they were made. Ctrl-C stops the server.
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}): pass another --port or --host") from None


def main(argv: list[str] | None = None) -> int:
    p = make_parser("serve.py", "A web page and a JSON API for mask detection: drop photos and videos, use the\n"
                    "camera, or POST images from another program. Same detector as detect.py.", EXAMPLES)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 makes it reachable from the network (use --token then)")
    p.add_argument("--port", type=number(int, 0, 65535), default=8000, help="TCP port to listen on (0: any free one)")
    p.add_argument("--weights", default=None, help="model .onnx or .pt; default: models/best.onnx, else models/best.pt")
    p.add_argument("--conf", "--conf-thres", dest="conf", type=CONFIDENCE, default=0.25, help="minimum confidence to keep a box")
    p.add_argument("--iou", "--iou-thres", dest="iou", type=IOU, default=0.45, help="NMS IoU threshold")
    p.add_argument("--imgsz", "--img", "--img-size", dest="imgsz", type=IMGSZ, default=None,
                   help="inference size in pixels (default: the model's own)")
    p.add_argument("--device", default=None, help="'cpu', or a CUDA device such as '0'")
    p.add_argument("--workers", type=int, default=1,
                   help="models run at once (each a copy of the model)")
    p.add_argument("--backlog", type=int, default=None,
                   help="requests that may wait for a worker; more get 503 + Retry-After (default: as many as --workers)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload accepted; bigger ones get 413")
    p.add_argument("--token", default=os.environ.get("MASKDET_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on every API call (the page asks once); "
                        "default: $MASKDET_TOKEN, else none")
    p.add_argument("--keep-minutes", type=float, default=60.0, help="delete uploads and results this long after they were made")
    p.add_argument("--max-video-jobs", type=int, default=2, help="videos processed at once; more get 503 + Retry-After")
    p.add_argument("--project", default=str(PROJECT_ROOT / "runs" / "serve"), help="where run folders go")
    p.add_argument("--name", default="exp", help="run folder name (exp, exp2, ... if it exists)")
    args = p.parse_args(argv)

    require_modules("serve.py", *SERVER_MODULES)
    if args.workers < 1 or args.max_video_jobs < 1 or (args.backlog or 0) < 0 or args.max_upload_mb <= 0 or args.keep_minutes <= 0:
        raise UserError("--workers and --max-video-jobs must be 1 or more, --backlog 0 or more, "
                        "--max-upload-mb and --keep-minutes above 0")
    check_port_free(args.host, args.port)

    import uvicorn

    from maskdet.inference.detect import default_weights
    from maskdet.serving.app import create_app
    from maskdet.serving.service import ServeSettings, Service

    settings = ServeSettings(weights=args.weights or default_weights(), results_dir=next_run_dir(args.project, args.name),
                             conf=args.conf, iou=args.iou, imgsz=args.imgsz, device=args.device, workers=args.workers,
                             backlog=args.backlog, max_upload_mb=args.max_upload_mb, token=args.token or None, keep_minutes=args.keep_minutes,
                             max_video_jobs=args.max_video_jobs)
    service = Service(settings)  # load the model now: a bad --weights is one line, not a server log
    if not is_loopback(args.host) and not settings.token:
        print(f"warning: listening on {args.host} without --token: anyone on the network can use this server", flush=True)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"maskdet server ({settings.weights}, {service.pool.imgsz} px, {args.workers} worker(s)): "
          f"open http://{shown}:{args.port}/  (API docs: /docs; Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, service), host=args.host, port=args.port,
                                           log_level="warning", access_log=False))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shuts down gracefully on Ctrl-C, then re-raises it: stopping is not an error
        pass
    print()
    for line in service.summary_lines():
        print(line)
    return 0
