"""The FastAPI app: the page at /, the JSON API under /api, OpenAPI docs at /docs.

Every error is JSON `{"error": "..."}` naming the problem, with the right status (400, 401, 404,
413, 415, 503 + Retry-After); never a traceback in a response.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import cv2
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import maskdet
from maskdet.inference.visualize import class_color
from maskdet.serving.auth import bearer_token, token_matches
from maskdet.serving.jobs import Job
from maskdet.serving.pool import PoolFull
from maskdet.serving.service import ServeSettings, Service
from maskdet.serving.uploads import UploadError, check_kind, check_video, decode_image, display_name

STATIC = Path(__file__).with_name("static")
RETRY_AFTER_S = 1  # a photo takes well under a second: try again soon
VIDEO_RETRY_AFTER_S = 10
CHUNK = 1 << 20
log = logging.getLogger("maskdet.serve")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def css_color(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def busy(retry_after: int = RETRY_AFTER_S) -> HTTPException:
    return HTTPException(503, f"busy: every worker is taken, try again in {retry_after} s", {"Retry-After": str(retry_after)})


class BodyLimit:
    """Refuse a request whose Content-Length is over the upload limit before reading any of it (413)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length and length.isdigit() and int(length) > self.limit + 64 * 1024:  # + room for the form fields
                response = error(413, f"upload too large: {int(length) / 2**20:.1f} MB, the limit is "
                                      f"{self.limit / 2**20:g} MB (--max-upload-mb)")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    """The app for these settings; `service` (already loaded) may be passed in to share it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = service or Service(settings)
        sweeper = asyncio.create_task(expire_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            await run_in_threadpool(app.state.service.close)

    async def expire_forever() -> None:
        while True:
            await asyncio.sleep(max(1.0, min(60.0, settings.keep_minutes * 30)))
            await run_in_threadpool(svc().store.expire)

    def svc() -> Service:
        return app.state.service

    def check_token(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        if not token_matches(bearer_token(given), settings.token):
            raise HTTPException(401, "missing or wrong token: send the header 'Authorization: Bearer <token>'"
                                if given else "this server needs a token: send the header 'Authorization: Bearer <token>'",
                                {"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="maskdet", version=maskdet.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Face-mask detection: who wears a mask, who does not, who wears it wrong. "
                              "With --token, send 'Authorization: Bearer <token>' on every /api call.")
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    auth = [Depends(check_token)]

    @app.exception_handler(UploadError)
    async def upload_error(_request: Request, exc: UploadError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return error(400, f"bad request: {problems}")

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")  # the traceback goes to the server's log, never to the client
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    async def read_upload(upload: UploadFile, wanted: str) -> tuple[str, str, bytes]:
        """(display name, suffix, first bytes); 413 over the limit, 415 for the wrong kind, by content."""
        name = display_name(upload.filename)
        size = upload.size if upload.size is not None else len(await upload.read())
        if size > settings.max_upload_bytes:
            raise UploadError(413, f"{name}: {size / 2**20:.1f} MB, over the {settings.max_upload_mb:g} MB limit (--max-upload-mb)")
        if size == 0:
            raise UploadError(400, f"{name}: the file is empty")
        await upload.seek(0)
        head = await upload.read(512)
        suffix = check_kind(head, wanted, name)
        await upload.seek(0)
        return name, suffix, head

    @app.get("/api/health", dependencies=auth)
    async def health() -> dict:
        """The model, its classes and input size, and the server's limits."""
        service = svc()
        names = service.pool.names
        return {"status": "ok", "version": maskdet.__version__, "model": Path(settings.weights).name, "classes": list(names),
                "colors": {name: css_color(class_color(i, names)) for i, name in enumerate(names)},  # the page's live boxes
                "imgsz": service.pool.imgsz, "conf": settings.conf, "iou": settings.iou, "workers": service.pool.workers,
                "max_upload_mb": settings.max_upload_mb, "keep_minutes": settings.keep_minutes}

    @app.post("/api/detect", dependencies=auth)
    async def detect(file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, BMP, WebP or TIFF")],
                     annotated: Annotated[bool, Query(description="include the annotated image (JPEG, base64)")] = False,
                     save: Annotated[bool, Query(description="keep the annotated image, CSV and JSON for download")] = False,
                     ) -> dict:
        """One photo in, its detections out (class, confidence, box in pixels; counts per class)."""
        name, _suffix, _head = await read_upload(file, "image")
        service = svc()
        try:
            with service.pool.ticket():  # reading and decoding inside too: bytes and pixels in memory are bounded like the work
                image = await run_in_threadpool(decode_image, await file.read(), name)
                out, picture = await run_in_threadpool(service.detect_photo, image, name, save)
        except PoolFull:
            raise busy() from None
        if annotated:
            ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
            out["image"] = "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode() if ok else None
        if save:
            out["files"] = file_links(service.store.get(out["job"]))
        return out

    def file_links(job: Job | None) -> dict[str, str]:
        return {name: f"/api/files/{job.id}/{name}" for name in job.files} if job else {}

    def job_status(job: Job) -> dict:
        return {"id": job.id, "status": job.status, "source": job.source, "frames": job.frames, "total": job.total,
                "progress": round(min(1.0, job.frames / job.total), 3) if job.total else (1.0 if job.status == "done" else 0.0),
                "counts": job.counts, "error": job.error, "files": file_links(job) if job.status == "done" else {}}

    @app.post("/api/videos", dependencies=auth, status_code=202)
    async def start_video(file: Annotated[UploadFile, File(description="a video: MP4, MOV, MKV, WebM, AVI or MPEG")]) -> dict:
        """Start a video job; poll GET /api/videos/{id} for progress, then the result links."""
        service = svc()
        if service.store.active("video") >= settings.max_video_jobs:
            raise busy(VIDEO_RETRY_AFTER_S)
        name, suffix, _head = await read_upload(file, "video")
        job = service.store.create("video", name)
        try:
            path = job.folder / f"input{suffix}"  # the server's name, never the client's
            with open(path, "wb") as out:
                await run_in_threadpool(shutil.copyfileobj, file.file, out, CHUNK)
            job.total, fps = await run_in_threadpool(check_video, path, name)
        except BaseException:
            service.store.remove(job)
            raise
        job.total = job.total or None
        service.start_video(job, path, fps)
        return job_status(job)

    @app.get("/api/videos/{job_id}", dependencies=auth)
    async def video_status(job_id: str) -> dict:
        """Progress of a video job (frames done of total), then links to the MP4 (H.264), CSV and JSON."""
        job = svc().store.get(job_id)
        if job is None or job.kind != "video":
            raise HTTPException(404, f"no video job {job_id!r} (unknown, or expired)")
        return job_status(job)

    @app.get("/api/files/{job_id}/{name}", dependencies=auth)
    async def download(job_id: str, name: str) -> FileResponse:
        """A result file of a job, by the name the job's links give."""
        path = svc().store.file(job_id, name)
        if path is None:
            raise HTTPException(404, "no such result file (unknown, or expired)")
        return FileResponse(path, filename=name)

    @app.websocket("/api/live")
    async def live(ws: WebSocket, token: str | None = None) -> None:
        """The camera: the page sends one JPEG, waits for its detections, then sends the newest frame.
        Browsers cannot set headers on a WebSocket: the token comes as ?token=."""
        if not token_matches(token, settings.token):
            await ws.close(code=1008, reason="missing or wrong token")
            return
        await ws.accept()
        service = svc()
        index = 0
        try:
            while True:
                data = await ws.receive_bytes()
                try:
                    with service.pool.ticket():
                        image = await run_in_threadpool(decode_image, data, "camera frame")
                        out = await run_in_threadpool(service.live, image, index)
                except UploadError as exc:
                    out = {"error": exc.message}
                except PoolFull:
                    out = {"error": "busy", "retry_after": RETRY_AFTER_S}
                index += 1
                await ws.send_json(out)
        except WebSocketDisconnect:
            pass

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_docs(app)
    return app


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

