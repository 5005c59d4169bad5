"""The FastAPI app: the page at /, the JSON API under /api, OpenAPI docs at /docs.

Every error is JSON `{"error": "..."}` naming the problem, with the right status (400, 401, 404, 405,
413, 415, 503 + Retry-After), the framework's own errors included; never a traceback in a response.
What a client sends is bounded before it is parsed or decoded: body bytes as they arrive (BodyLimit),
one file per request, image pixels from the header (maskdet.imageio), video frame size and length from
the container (uploads.check_video).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

import cv2
from fastapi import APIRouter, FastAPI, File, HTTPException, Query, Request, Security, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import maskdet
from maskdet.inference.visualize import class_color
from maskdet.serving import fleet
from maskdet.serving.auth import token_matches, token_refusal
from maskdet.serving.errors import MIB, documented, error, mib
from maskdet.serving.jobs import Job
from maskdet.serving.pool import PoolFull
from maskdet.serving.service import ServeSettings, Service
from maskdet.serving.uploads import UploadError, check_kind, check_video, decode_image, display_name
from maskdet.settings import SERVE_PRIVACY_LEVELS

STATIC = Path(__file__).with_name("static")
RETRY_AFTER_S = 1  # a photo takes well under a second: try again soon
VIDEO_RETRY_AFTER_S = 10
CHUNK = 1 << 20
FORM_SLACK = 64 * 1024  # room for the multipart boundaries and headers around the file
MAX_FILES = 1  # files per request: one photo (or video) per POST, each answered on its own
# Declared for the OpenAPI docs (their Authorize button); auto_error=False: check_token does the checking.
BEARER = HTTPBearer(auto_error=False, description="the server's --token (only when it was started with one)")
PRIVACY = SERVE_PRIVACY_LEVELS  # what ?privacy= may be, on every route
PrivacyQuery = Annotated[Literal[PRIVACY] | None, Query(
    description="blur: every face found is blurred in the pictures returned and kept (always so with serve.py --privacy blur)")]
CLOSE_REASON_BYTES = 123  # the most a WebSocket close frame's reason may hold (RFC 6455)
SHOWN_PATH_CHARS = 200  # of a client's path, in a 404
log = logging.getLogger("maskdet.serve")


def css_color(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def busy(retry_after: int = RETRY_AFTER_S, why: str = "every worker is taken") -> HTTPException:
    return HTTPException(503, f"busy: {why}, try again in {retry_after} s", {"Retry-After": str(retry_after)})


def close_reason(text: str) -> str:
    """`text` cut to what a WebSocket close frame holds (123 bytes of UTF-8)."""
    data = text.encode()
    return text if len(data) <= CLOSE_REASON_BYTES else data[:CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


class TokenGate:
    """With --token, an /api request without it is answered 401 before any of its body is read: a client
    without the token cannot make the server parse or spool an upload. (Routes check it again.)"""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = {k.lower(): v for k, v in scope.get("headers") or []}
            refusal = token_refusal(self.token, headers.get(b"authorization", b"").decode("latin-1"))
            if refusal:
                await error(401, refusal, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyRefused(StarletteHTTPException):
    """Raised from inside the body stream (too large, or too slow): FastAPI lets an HTTPException through its
    form parsing as is."""


class BodyLimit:
    """Stop reading a request body as soon as it passes the upload limit, whatever its framing (413), or
    falls behind a minimum rate (408).

    A Content-Length over the limit is refused before any byte is read; a chunked body (or one whose
    Content-Length lies) is counted as it arrives, so at most the limit is ever parsed or spooled to disk.
    A body that trickles in (a byte every few seconds, holding a connection and a worker's form parser
    forever) is cut off once it averages less than `min_rate` bytes/s after its first `grace_s`.
    """

    def __init__(self, app, limit: int, min_rate: int, grace_s: float):
        self.app, self.limit, self.min_rate, self.grace_s = app, limit, min_rate, grace_s

    def message(self, size: str) -> str:
        return f"upload too large: {size}, the limit is {self.limit / MIB:g} MiB (--max-upload-mb)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.limit + FORM_SLACK
        length = dict(scope.get("headers") or []).get(b"content-length")
        size = (int(length) if len(length) <= 18 else 10**18) if length and length.isdigit() else 0  # (more digits: over any limit)
        if size > allowed:
            await error(413, self.message(mib(size, self.limit / MIB)))(scope, receive, send)
            return
        received, started, body_done = 0, time.monotonic(), False

        async def counted_receive():
            nonlocal received, body_done
            if body_done:  # what follows is the wait for a disconnect (a long download listens for one): no deadline
                return await receive()
            deadline = started + self.grace_s + received / self.min_rate  # when the average rate falls short
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise BodyRefused(408, f"upload too slow: {received:,} bytes in {time.monotonic() - started:.0f} s, "
                                       f"under {self.min_rate / 1024:g} KB/s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > allowed:
                    raise BodyRefused(413, self.message(f"over {mib(allowed, self.limit / MIB)}"))
            return message

        await self.app(scope, counted_receive, send)


# -- the routes: module-level routers; each reads the app's settings and service from app.state -----------

api_router = APIRouter()  # /api/...: included behind the token check (require_token)
live_router = APIRouter()  # the WebSocket checks its own ?token= (browsers cannot set its headers)
page_router = APIRouter()


def settings_of(request: Request | WebSocket) -> ServeSettings:
    return request.app.state.settings


def service_of(request: Request | WebSocket) -> Service:
    return request.app.state.service


def require_token(request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> None:
    """The token from the Authorization header only (never the query), compared in constant time.
    BEARER is declared so /docs has an Authorize button; the check itself is this function's."""
    refusal = token_refusal(settings_of(request).token, request.headers.get("authorization", ""))
    if refusal:
        raise HTTPException(401, refusal, {"WWW-Authenticate": "Bearer"})


async def read_upload(request: Request, upload: UploadFile, wanted: str) -> tuple[str, str, bytes]:
    """(display name, suffix, first bytes); 400 for more than MAX_FILES files, 413 over the limit,
    415 for the wrong kind, by content."""
    settings = settings_of(request)
    files = [value for _key, value in (await request.form()).multi_items() if not isinstance(value, str)]
    if len(files) > MAX_FILES:  # a form keeps the last of repeated fields: never answer for one of many silently
        raise UploadError(400, f"{len(files)} files in one request: send one file per request")
    name = display_name(upload.filename)
    size = upload.size if upload.size is not None else len(await upload.read())
    if size > settings.max_upload_bytes:
        raise UploadError(413, f"{name}: {mib(size, settings.max_upload_mb)}, over the {settings.max_upload_mb:g} MiB limit "
                               "(--max-upload-mb)")
    if size == 0:
        raise UploadError(400, f"{name}: the file is empty")
    await upload.seek(0)
    head = await upload.read(512)
    suffix = check_kind(head, wanted, name)
    await upload.seek(0)
    return name, suffix, head


def file_links(job: Job | None) -> dict[str, str]:
    return {name: f"/api/files/{job.id}/{name}" for name in job.files} if job else {}


def job_status(job: Job) -> dict:
    """`warning`: done, but not all of it (a video that ended before the frame count its header gave: frames of total)."""
    return {"id": job.id, "status": job.status, "source": job.source, "frames": job.frames, "total": job.total,
            "progress": round(min(1.0, job.frames / job.total), 3) if job.total else (1.0 if job.status == "done" else 0.0),
            "counts": job.counts, "error": job.error, "warning": job.warning,
            "files": file_links(job) if job.status == "done" else {}}


@api_router.get("/api/health", responses=documented(401))
async def health(request: Request) -> dict:
    """The model, its classes and input size, how it looks at a frame (tiles, mirror view), and the server's limits."""
    settings, service = settings_of(request), service_of(request)
    names = service.pool.names
    return {"status": "ok", "version": maskdet.__version__, "model": Path(settings.weights).name, "classes": list(names),
            "colors": {name: css_color(class_color(i, names)) for i, name in enumerate(names)},  # the page's live boxes
            "imgsz": service.pool.imgsz, "conf": settings.conf, "iou": settings.iou, "workers": service.pool.workers,
            "max_upload_mb": settings.max_upload_mb, "max_files": MAX_FILES, "max_pixels": settings.max_pixels,
            "max_video_pixels": settings.max_video_pixels, "max_video_frames": settings.max_video_frames,
            "keep_minutes": settings.keep_minutes, "max_saved_mb": settings.max_saved_mb,
            "privacy": settings.privacy, "tile": settings.tile, "augment": settings.augment}


@api_router.post("/api/detect", responses=documented(400, 401, 413, 415, 503))
async def detect(request: Request, file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, BMP, WebP or TIFF")],
                 annotated: Annotated[bool, Query(description="include the annotated image (JPEG, base64)")] = False,
                 save: Annotated[bool, Query(description="keep the annotated image, CSV and JSON for download")] = False,
                 privacy: PrivacyQuery = None) -> dict:
    """One photo in, its detections out (class, confidence, box in pixels; counts per class)."""
    name, _suffix, _head = await read_upload(request, file, "image")
    settings, service = settings_of(request), service_of(request)
    try:
        with service.pool.ticket():  # reading and decoding inside too: bytes and pixels in memory are bounded like the work
            image = await run_in_threadpool(decode_image, await file.read(), name, settings.max_pixels)
            out, picture = await run_in_threadpool(service.detect_photo, image, name, save, service.blurs(privacy))
    except PoolFull:
        raise busy() from None
    if annotated:
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
        out["image"] = "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode() if ok else None
    if save:
        out["files"] = file_links(service.store.get(out["job"]))
    return out


@api_router.post("/api/videos", status_code=202, responses=documented(400, 401, 413, 415, 503))
async def start_video(request: Request, file: Annotated[UploadFile, File(description="a video: MP4, MOV, MKV, WebM, AVI or MPEG")],
                      privacy: PrivacyQuery = None) -> dict:
    """Start a video job; poll GET /api/videos/{id} for progress, then the result links."""
    settings, service = settings_of(request), service_of(request)
    # Check and take the slot with no await between them: concurrent uploads cannot all pass the check.
    if service.store.active("video") >= settings.max_video_jobs:
        running = "1 video is" if settings.max_video_jobs == 1 else f"{settings.max_video_jobs} videos are"
        raise busy(VIDEO_RETRY_AFTER_S, f"the video-job limit is reached ({running} being processed, --max-video-jobs)")
    job = service.store.create("video", display_name(file.filename))
    try:
        name, suffix, _head = await read_upload(request, file, "video")
        path = job.folder / f"input{suffix}"  # the server's name, never the client's
        with open(path, "wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out, CHUNK)
        job.total, fps = await run_in_threadpool(check_video, path, name, settings.max_video_pixels,
                                                 settings.max_video_frames)
    except BaseException:
        service.store.remove(job)
        raise
    job.total = job.total or None
    service.start_video(job, path, fps, service.blurs(privacy))
    return job_status(job)


@api_router.get("/api/videos/{job_id}", responses=documented(401, 404))
async def video_status(request: Request, job_id: str) -> dict:
    """Progress of a video job (frames done of total), then links to the MP4 (H.264), CSV and JSON."""
    job = service_of(request).store.get(job_id)
    if job is None or job.kind != "video":
        raise HTTPException(404, f"no video job {job_id!r} (unknown, or expired)")
    return job_status(job)


@api_router.get("/api/files/{job_id}/{name}", responses=documented(401, 404))
async def download(request: Request, job_id: str, name: str) -> FileResponse:
    """A result file of a job, by the name the job's links give."""
    path = service_of(request).store.file(job_id, name)
    if path is None:
        raise HTTPException(404, "no such result file (unknown, or expired)")
    return FileResponse(path, filename=name)


async def answer_in_time(ws: WebSocket, answer: dict, seconds: float) -> bool:
    """Send an answer; False if the client has not taken the ones before within `seconds` (it reads nothing:
    its socket's buffers are full), and then its slot is given up, as for a camera that sends nothing."""
    try:
        await asyncio.wait_for(ws.send_json(answer), seconds)
    except asyncio.TimeoutError:
        return False
    return True


@live_router.websocket("/api/live")
async def live(ws: WebSocket, token: str | None = None, privacy: str | None = None) -> None:
    """The camera: the page sends one JPEG (a binary message), waits for its detections, then sends the
    newest frame. A bad frame is answered {"error": ...} and the socket stays open; a text message closes it
    (1003: the page never sends one, and answering each would let a client flood the server's event loop).
    Browsers cannot set headers on a WebSocket: the token comes as ?token=.
    Each open socket holds one of --max-live slots, so a camera frame must arrive within --live-timeout of the
    last one (bad frames do not count), and each answer be taken within it too: a camera that goes quiet,
    trickles a frame, sends only frames that are not images or reads no answers is closed, 1001."""
    settings = settings_of(ws)
    # Refusals are made after accept(): closed before it, the client sees only an HTTP 403 without a reason.
    # Nothing is read before them: no frame of a client without the token, or with a privacy it cannot have.
    await ws.accept()
    if not token_matches(token, settings.token):
        await ws.close(code=1008, reason="missing or wrong token" if token else "this server needs a token: add ?token=")
        return
    if privacy is not None and privacy not in PRIVACY:
        await ws.close(code=1008, reason=close_reason(f"privacy must be {' or '.join(PRIVACY)}, not {privacy!r}"))
        return
    if ws.app.state.live_open >= settings.max_live:  # checked and counted with no await between
        live_now = "1 camera is" if settings.max_live == 1 else f"{settings.max_live} cameras are"
        await ws.close(code=1013, reason=f"busy: {live_now} live (--max-live); try again later")
        return
    ws.app.state.live_open += 1
    service = service_of(ws)
    index = 0
    clock = asyncio.get_running_loop().time
    frame_due = clock() + settings.live_timeout_s  # moved on by each camera frame, not by any message
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), max(frame_due - clock(), 0.0))
            except asyncio.TimeoutError:
                await ws.close(code=1001, reason=f"no camera frame for {settings.live_timeout_s:g} s (--live-timeout): "
                                                 "closed to free the slot")
                break
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                await ws.close(code=1003, reason="send each camera frame as a binary message (JPEG bytes), not text")
                break
            camera_frame = True  # a busy server's refusal counts: the server, not the camera, is short
            try:
                with service.pool.ticket():
                    image = await run_in_threadpool(decode_image, data, "camera frame", settings.max_pixels)
                    out = await run_in_threadpool(service.live, image, index, service.blurs(privacy))
            except UploadError as exc:
                camera_frame = False
                out = {"error": exc.message}
            except PoolFull:
                out = {"error": "busy", "retry_after": RETRY_AFTER_S}
            index += 1
            if not await answer_in_time(ws, out, settings.live_timeout_s):
                break
            if camera_frame:  # the camera sends its next frame once it has this answer
                frame_due = clock() + settings.live_timeout_s
    except WebSocketDisconnect:
        pass
    finally:
        ws.app.state.live_open -= 1


@page_router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


# -- errors: every one is {"error": ...} ------------------------------------------------------------------


async def upload_error(_request: Request, exc: UploadError) -> JSONResponse:
    return error(exc.status, exc.message)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's and the router's own (404, 405, a malformed form); the framework's bare 404 and 405 say what was
    asked for, and which methods the path takes."""
    message = str(exc.detail)
    path = request.url.path
    shown = path if len(path) <= SHOWN_PATH_CHARS else path[:SHOWN_PATH_CHARS] + "..."
    if exc.status_code == 404 and message == "Not Found":
        message = f"not found: {request.method} {shown} (no such page, file or API route; the API is listed at /docs)"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        allowed = sorted(m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip())
        message = f"method not allowed: {request.method} {shown}" + (f"; it takes {', '.join(allowed)}" if allowed else "")
    return error(exc.status_code, message, exc.headers)


async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
    return error(400, f"bad request: {problems}")


async def internal(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error")  # the traceback goes to the server's log, never to the client
    return error(500, f"internal error ({type(exc).__name__}); the server log has the details")


# -- the app ------------------------------------------------------------------------------------------------


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    """The app for these settings: the routers above, the limits, the error answers, the docs. `service`
    (already loaded) may be passed in to share it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = service or Service(settings)
        sweeper = asyncio.create_task(expire_forever(app))
        try:
            yield
        finally:
            sweeper.cancel()
            await run_in_threadpool(app.state.service.close)

    async def expire_forever(app: FastAPI) -> None:
        while True:
            await asyncio.sleep(max(1.0, min(60.0, settings.keep_minutes * 30)))
            await run_in_threadpool(app.state.service.store.expire)

    app = FastAPI(title="maskdet", version=maskdet.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Face-mask detection: who wears a mask, who does not, who wears it wrong. "
                              "With --token, send `Authorization: Bearer <token>` on every /api call "
                              "(the Authorize button). Every error is JSON `{\"error\": \"...\"}`.\n\n"
                              f"Limits: {settings.max_upload_mb:g} MiB a request, {MAX_FILES} file a request, "
                              f"{settings.max_pixels / 1e6:g} megapixels a photo or camera frame, "
                              f"{settings.max_video_pixels / 1e6:.3g} megapixels a video frame, "
                              f"{settings.max_video_frames} frames a video.")
    app.state.settings = settings
    app.state.live_open = 0  # /api/live sockets open now (at most settings.max_live)
    app.state.fleet_db = settings.fleet_db  # serve.py --db: monitor.py's store, shown at /fleet
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes, min_rate=settings.min_upload_rate,
                       grace_s=settings.upload_grace_s)
    app.add_middleware(TokenGate, token=settings.token)  # added last: runs first
    app.add_exception_handler(UploadError, upload_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(Exception, internal)
    auth = [Security(require_token)]
    app.include_router(api_router, dependencies=auth)
    app.include_router(live_router)
    app.include_router(page_router)
    app.include_router(fleet.page_router)
    app.include_router(fleet.api_router, dependencies=auth)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    without_422(app)
    add_docs(app)
    return app


def without_422(app: FastAPI) -> None:
    """FastAPI documents its validation errors as 422 {"detail": ...}; this app answers them 400 {"error": ...}."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema

    app.openapi = openapi


def add_docs(app: FastAPI) -> None:
    """/docs with Swagger UI served from the swagger-ui-bundle package: FastAPI's default loads it from a CDN."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # not installed: FastAPI's own page (it needs the internet)
        app.get("/docs", include_in_schema=False)(lambda: get_swagger_ui_html(openapi_url=app.openapi_url, title=app.title))
        return
    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url="/swagger-ui/swagger-ui-bundle.js", swagger_css_url="/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/swagger-ui/favicon-32x32.png")

