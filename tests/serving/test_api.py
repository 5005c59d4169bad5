"""The HTTP API, through FastAPI's test client: every endpoint and every refusal."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time

import cv2
import numpy as np
import pytest


def post_photo(client, path, name=None, **params):
    with open(path, "rb") as f:
        return client.post("/api/detect", params=params, files={"file": (name or path.name, f, "image/png")})


def job_folders(run_folder) -> list:
    """What the server keeps in its run folder, apart from the marker that says the folder is a server's."""
    from maskdet.serving.jobs import MARKER

    return [path for path in run_folder.iterdir() if path.name != MARKER]


def wait_done(client, job_id, timeout=60.0, headers=None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/videos/{job_id}", headers=headers).json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    pytest.fail(f"video job {job_id} not done after {timeout} s")


# --- what it answers ---------------------------------------------------------------------------


def test_health_names_the_model_its_classes_input_size_and_version(client, weights):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["model"] == weights.name
    assert body["classes"] == ["with_mask", "without_mask", "mask_weared_incorrect"]
    assert body["imgsz"] == 320 and body["version"]


def test_detect_returns_each_face_with_class_confidence_pixel_box_and_counts(client, photo, serve_kit):
    response = post_photo(client, photo)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == serve_kit.photo_wh
    assert body["counts"] == {"with_mask": 1, "without_mask": 1}
    found = sorted((d["class_name"], d["confidence"], d["x1"], d["y1"], d["x2"], d["y2"]) for d in body["detections"])
    expected = sorted((["with_mask", "without_mask"][c], s, x1, y1, x2, y2) for x1, y1, x2, y2, c, s in serve_kit.faces)
    for got, want in zip(found, expected):
        assert got[0] == want[0] and got[1] == pytest.approx(want[1], abs=1e-3)
        assert got[2:] == pytest.approx(want[2:], abs=1.0)
    assert "image" not in body and "files" not in body  # only when asked


def test_detect_with_annotated_returns_the_picture_with_boxes_in_class_colours(client, photo, serve_kit):
    body = post_photo(client, photo, annotated="true").json()
    header, data = body["image"].split(",", 1)
    assert header == "data:image/jpeg;base64"
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[:2] == serve_kit.photo_wh[::-1]
    plain = cv2.imread(str(photo))
    assert serve_kit.count_color(picture, serve_kit.green) > serve_kit.count_color(plain, serve_kit.green) + 100
    assert serve_kit.count_color(picture, serve_kit.red) > serve_kit.count_color(plain, serve_kit.red) + 100


def test_detect_with_save_keeps_the_image_csv_and_json_of_detect_py_for_download(client, photo):
    body = post_photo(client, photo, save="true").json()
    assert set(body["files"]) == {"annotated.png", "predictions.csv", "predictions.json"}
    rows = list(csv.DictReader(io.StringIO(client.get(body["files"]["predictions.csv"]).text)))
    records = client.get(body["files"]["predictions.json"]).json()
    assert records == body["detections"] and len(rows) == 2
    assert [r["class_name"] for r in rows] == [r["class_name"] for r in records]
    assert all(r["source"] == "people.png" for r in records)
    image = client.get(body["files"]["annotated.png"])
    assert image.headers["content-type"] == "image/png"
    assert cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR) is not None


def test_a_video_job_reports_progress_then_links_to_an_h264_mp4_and_the_records(client, video):
    with open(video, "rb") as f:
        response = client.post("/api/videos", files={"file": ("clip.mp4", f, "video/mp4")})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running", "done") and job["total"] == 6
    status = wait_done(client, job["id"])
    assert status["status"] == "done", status
    assert status["frames"] == 6 and status["progress"] == 1.0
    assert status["counts"] == {"with_mask": 1, "without_mask": 1}  # people (tracked), not boxes summed over frames
    people = client.get(status["files"]["people.json"]).json()
    assert [(p["verdict"], p["first"] <= p["last"]) for p in people["people"]] == [("with_mask", True), ("without_mask", True)]
    assert people["duration"] == 0.6
    import av

    mp4 = client.get(status["files"]["annotated.mp4"])
    assert mp4.status_code == 200
    with av.open(io.BytesIO(mp4.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"  # what browsers play (not mp4v)
        assert sum(1 for _ in container.decode(stream)) == 6
    rows = list(csv.DictReader(io.StringIO(client.get(status["files"]["predictions.csv"]).text)))
    assert len(rows) == 12 and {r["frame"] for r in rows} == {str(i) for i in range(6)}
    assert {r["source"] for r in rows} == {"clip.mp4"}


def test_an_unknown_video_job_is_404_json(client):
    response = client.get("/api/videos/" + "0" * 32)
    assert response.status_code == 404 and "error" in response.json()


def test_the_page_and_the_openapi_docs_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    schema = client.get("/openapi.json").json()
    assert {"/api/health", "/api/detect", "/api/videos", "/api/videos/{job_id}"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_the_page_and_the_docs_load_nothing_from_the_internet(client):
    pages = {"/": client.get("/").text, "/docs": client.get("/docs").text}
    for name in ("app.js", "style.css"):
        pages[name] = client.get(f"/static/{name}").text
    for name, text in pages.items():
        assert not re.findall(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), name
        assert not re.findall(r"url\(\s*[\"']?(?:https?:)?//", text), name  # CSS fonts and images
    for asset in re.findall(r"(?:src|href)=[\"']?(/[^\"' >]+)", pages["/"] + pages["/docs"]):
        assert client.get(asset).status_code == 200, asset  # every asset they name is served here


# --- refusals ----------------------------------------------------------------------------------


def assert_json_error(response, status: int, *fragments: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert "Traceback" not in response.text
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_an_upload_over_the_limit_is_413_whether_announced_or_not(make_client, tmp_path):
    client = make_client(max_upload_mb=0.1)
    far_over = tmp_path / "big.png"
    cv2.imwrite(str(far_over), np.random.default_rng(0).integers(0, 256, (600, 600, 3), np.uint8))
    assert far_over.stat().st_size > 1_000_000
    assert_json_error(post_photo(client, far_over), 413, "limit")
    just_over = tmp_path / "just.png"  # within the form's slack: refused after parsing, by its size
    cv2.imwrite(str(just_over), np.random.default_rng(0).integers(0, 256, (190, 190, 3), np.uint8))
    assert 0.1 * 2**20 < just_over.stat().st_size < 0.1 * 2**20 + 60_000
    assert_json_error(post_photo(client, just_over), 413, "just.png", "0.1 MiB")


def test_a_file_that_is_not_an_image_is_415_whatever_its_name(client, tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("name,mask\nann,yes\n")
    assert_json_error(post_photo(client, fake), 415, "photo.jpg", "not an image")


def test_a_video_sent_as_a_photo_and_a_photo_sent_as_a_video_are_415_with_the_right_endpoint(client, photo, video):
    assert_json_error(post_photo(client, video, name="clip.jpg"), 415, "/api/videos")
    with open(photo, "rb") as f:
        assert_json_error(client.post("/api/videos", files={"file": ("people.mp4", f)}), 415, "/api/detect")


def test_a_corrupt_image_is_400_naming_it(client, photo, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(photo.read_bytes()[:80])
    assert_json_error(post_photo(client, broken), 400, "broken.png", "corrupt")


def test_a_corrupt_video_is_400_and_leaves_no_job_behind(client, video, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video.read_bytes()[:40] + b"\x00" * 500)
    with open(broken, "rb") as f:
        assert_json_error(client.post("/api/videos", files={"file": ("broken.mp4", f)}), 400, "broken.mp4", "corrupt")
    assert job_folders(tmp_path / "results") == []


def test_an_empty_file_and_a_missing_file_field_are_400(client, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_json_error(post_photo(client, empty), 400, "empty")
    assert_json_error(client.post("/api/detect"), 400, "file")


def test_a_client_file_name_never_reaches_the_disk(client, photo, tmp_path):
    body = post_photo(client, photo, name="../../x.png", save="true").json()
    assert body["source"] == "x.png"
    assert not (tmp_path / "x.png").exists() and not (tmp_path.parent / "x.png").exists()
    job_folder = tmp_path / "results" / body["job"]
    assert sorted(p.name for p in job_folder.iterdir()) == ["annotated.png", "predictions.csv", "predictions.json"]
    for url in (f"/api/files/{body['job']}/..%2F..%2Fx.png", f"/api/files/{body['job']}/%2E%2E",
                "/api/files/..%2F..%2Fetc/passwd", f"/api/files/{body['job']}/input.png"):
        assert client.get(url).status_code == 404, url


def test_without_the_token_every_api_call_is_401_and_with_it_they_work(make_client, photo):
    client = make_client(token="s3cret")
    for call in (lambda h: client.get("/api/health", headers=h), lambda h: post_photo_h(client, photo, h),
                 lambda h: client.get("/api/videos/" + "0" * 32, headers=h),
                 lambda h: client.get("/api/files/" + "0" * 32 + "/predictions.csv", headers=h)):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = call(headers)
            assert_json_error(response, 401, "token")
            assert response.headers["www-authenticate"] == "Bearer"
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/api/health", headers=good).status_code == 200
    assert post_photo_h(client, photo, good).status_code == 200
    assert client.get("/").status_code == 200  # the page itself holds no data: it asks for the token


def post_photo_h(client, path, headers):
    with open(path, "rb") as f:
        return client.post("/api/detect", headers=headers, files={"file": (path.name, f)})


def test_a_full_pool_answers_503_with_retry_after_instead_of_queueing(make_client, photo):
    client = make_client(workers=1, backlog=0)
    pool = client.app.state.service.pool
    with pool.ticket():  # the only worker is busy
        response = post_photo(client, photo)
        assert_json_error(response, 503, "busy")
        assert int(response.headers["retry-after"]) >= 1
    assert post_photo(client, photo).status_code == 200  # free again


def test_more_video_jobs_than_allowed_answer_503_with_retry_after(make_client, video):
    client = make_client(max_video_jobs=1)
    pool = client.app.state.service.pool
    with pool.detector():  # hold the model: the first job cannot finish
        with open(video, "rb") as f:
            first = client.post("/api/videos", files={"file": ("a.mp4", f)})
        with open(video, "rb") as f:
            second = client.post("/api/videos", files={"file": ("b.mp4", f)})
    assert first.status_code == 202
    assert_json_error(second, 503, "busy")
    assert int(second.headers["retry-after"]) >= 1
    assert wait_done(client, first.json()["id"])["status"] == "done"


def test_concurrent_video_uploads_never_start_more_jobs_than_allowed(make_client, video):
    """The limit is checked and the slot taken with no await between: uploads arriving together cannot all
    pass the check while the first is still being stored (all 8 got 202 against a limit of 2)."""
    import asyncio

    import httpx2

    client = make_client(max_video_jobs=2)
    padding = 2 << 20  # an MP4 'free' box: past 1 MB, an upload is spooled to disk and read in a thread (awaited)
    data = video.read_bytes() + (8 + padding).to_bytes(4, "big") + b"free" + bytes(padding)

    async def upload_together() -> list:
        transport = httpx2.ASGITransport(app=client.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as together:
            return await asyncio.gather(*(together.post("/api/videos", files={"file": (f"{i}.mp4", data)})
                                          for i in range(6)))

    with client.app.state.service.pool.detector():  # hold the model: no job can finish meanwhile
        responses = asyncio.run(upload_together())
    assert sorted(r.status_code for r in responses) == [202, 202, 503, 503, 503, 503], [r.text for r in responses]
    for started in (r for r in responses if r.status_code == 202):
        assert wait_done(client, started.json()["id"])["status"] == "done"


def test_an_upload_that_trickles_in_is_cut_off_with_408_not_waited_for(make_client, photo):
    """A body at a byte every few seconds would hold its connection and form parser for ever (a real server
    was still waiting after 150 s): past the grace period it must keep an average rate."""
    import asyncio

    import httpx2

    client = make_client(upload_grace_s=0.5, min_upload_rate=1024)
    data = photo.read_bytes()

    async def trickle():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n\r\n" + data[:100]
        await asyncio.sleep(60)  # then nothing: cut off long before this
        yield data[100:] + b"\r\n--b--\r\n"

    async def post_slowly():
        transport = httpx2.ASGITransport(app=client.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as slow:
            return await slow.post("/api/detect", content=trickle(),
                                   headers={"content-type": "multipart/form-data; boundary=b"})

    started = time.monotonic()
    response = asyncio.run(post_slowly())
    assert response.status_code == 408 and "upload too slow" in response.json()["error"], response.text
    assert time.monotonic() - started < 30
    assert post_photo(client, photo).status_code == 200  # a photo sent at once is unaffected


def test_the_upload_deadline_ends_with_the_body_a_long_download_is_not_cut_off():
    """After the body, an app waits on receive() for the client to go (Starlette does, all through a file
    download): that wait has no deadline, however long the download takes."""
    import asyncio

    from maskdet.serving.app import BodyLimit

    seen = []

    async def app(scope, receive, send):
        seen.append(await receive())  # the body
        seen.append(await receive())  # then the disconnect, 0.5 s later: past the grace
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def client_side():
        messages = [{"type": "http.request", "body": b"x", "more_body": False}, {"type": "http.disconnect"}]

        async def receive():
            if len(messages) == 1:
                await asyncio.sleep(0.5)
            return messages.pop(0)

        async def send(message):
            pass

        await BodyLimit(app, limit=1024, min_rate=1024, grace_s=0.1)({"type": "http", "headers": []}, receive, send)

    asyncio.run(client_side())
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


def test_results_expire_and_their_folders_are_deleted(make_client, photo, tmp_path):
    client = make_client(keep_minutes=1)
    store = client.app.state.service.store
    body = post_photo(client, photo, save="true").json()
    assert client.get(body["files"]["predictions.csv"]).status_code == 200
    assert store.expire(now=time.monotonic() + 30) == 0  # not yet
    assert store.expire(now=time.monotonic() + 61) == 1
    assert not (tmp_path / "results" / body["job"]).exists()
    assert client.get(body["files"]["predictions.csv"]).status_code == 404


# --- live camera -------------------------------------------------------------------------------


def test_live_frames_over_a_websocket_get_their_detections_one_answer_per_frame(client, photo):
    jpeg = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    with client.websocket_connect("/api/live") as ws:
        for _ in range(3):
            ws.send_bytes(jpeg)
            answer = ws.receive_json()
            assert answer["counts"] == {"with_mask": 1, "without_mask": 1}
        ws.send_bytes(b"\xff\xd8\xffnot really")
        assert "corrupt" in ws.receive_json()["error"]
        ws.send_bytes(jpeg)  # a bad frame does not end the session
        assert len(ws.receive_json()["detections"]) == 2


def test_live_without_the_token_is_closed(make_client):
    from starlette.websockets import WebSocketDisconnect

    client = make_client(token="s3cret")
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/api/live") as ws:
        ws.receive_json()
    assert closed.value.code == 1008
    with client.websocket_connect("/api/live?token=s3cret") as ws:
        ws.send_bytes(b"x")
        assert "error" in ws.receive_json()


def test_json_errors_never_carry_a_traceback_even_for_an_unexpected_failure(make_client, photo):
    client = make_client()
    service = client.app.state.service
    service.detect_photo = lambda *a: (_ for _ in ()).throw(RuntimeError("disk on fire"))
    message = assert_json_error(post_photo(client, photo), 500, "internal error")
    assert "disk on fire" not in message
    assert json.loads(post_photo(client, photo).text)["error"]


def test_a_small_file_that_would_decode_to_a_huge_image_is_413(client, tmp_path, serve_kit):
    bomb = tmp_path / "bomb.png"
    for width, height in ((9_000, 12_000), (10_000, 20_000)):  # the second Pillow would refuse to size (over 2 x its limit)
        bomb.write_bytes(serve_kit.blank_png(width, height))
        assert bomb.stat().st_size < 1_000_000
        assert_json_error(post_photo(client, bomb), 413, "bomb.png", f"{width}x{height}", "megapixel")


# --- the error format and the docs ---------------------------------------------------------------


def test_the_frameworks_own_errors_are_json_error_too(client):
    assert_json_error(client.get("/api/nothing-here"), 404, "not found", "GET /api/nothing-here")
    assert_json_error(client.delete("/api/health"), 405, "method not allowed", "DELETE /api/health", "GET")
    malformed = client.post("/api/detect", content=b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n",
                            headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert_json_error(malformed, 400)
    no_boundary = client.post("/api/detect", content=b"abc", headers={"Content-Type": "multipart/form-data"})
    assert_json_error(no_boundary, 400)
    for response in (client.get("/api/nothing-here"), malformed, no_boundary):
        assert "detail" not in response.json()


def test_the_openapi_docs_declare_every_refusal_and_the_bearer_token(client):
    schema = client.get("/openapi.json").json()
    error_schema = {"$ref": "#/components/schemas/ErrorBody"}
    for path, statuses in {"/api/detect": {"400", "401", "413", "415", "503"}, "/api/videos": {"400", "401", "413", "415", "503"},
                           "/api/videos/{job_id}": {"401", "404"}, "/api/health": {"401"}}.items():
        operation = next(iter(schema["paths"][path].values()))
        assert statuses <= set(operation["responses"]), (path, operation["responses"].keys())
        assert "422" not in operation["responses"]  # validation errors are answered 400 {"error": ...}
        for status in statuses:
            assert operation["responses"][status]["content"]["application/json"]["schema"] == error_schema
        assert operation["security"] == [{"HTTPBearer": []}], path  # Swagger UI's Authorize button sends it
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "the server's --token (only when it was started with one)"}
    description = schema["info"]["description"]
    assert "`Authorization: Bearer <token>`" in description  # a Markdown code span: shown as text, not eaten as HTML
    assert all(word in description for word in ("megapixels", "MiB a request", "1 file a request", "frames a video"))


def test_a_video_longer_than_the_frame_limit_is_413_before_any_job_starts(make_client, video, tmp_path):
    client = make_client(max_video_frames=5)
    with open(video, "rb") as f:
        assert_json_error(client.post("/api/videos", files={"file": ("clip.mp4", f)}), 413, "clip.mp4", "6 frames", "5 frame limit")
    assert job_folders(tmp_path / "results") == []


def test_a_video_whose_header_lies_about_its_length_stops_at_the_frame_limit():
    from maskdet.inference.detections import Frame
    from maskdet.inference.sources import SourceError
    from maskdet.serving.video import bounded_frames

    frames = [Frame(np.zeros((30, 40, 3), np.uint8), "v", "v", "video", i) for i in range(3)]
    assert len(list(bounded_frames(frames, max_frames=3))) == 3
    with pytest.raises(SourceError, match="more than 2 frames"):
        list(bounded_frames(frames, max_frames=2))


def test_a_video_result_with_odd_sides_keeps_its_last_row_and_column(tmp_path):
    pytest.importorskip("av", reason="PyAV (requirements-serve.txt)")
    from maskdet.inference.detections import Detections, Frame
    from maskdet.serving.video import BrowserVideoSink

    image = np.zeros((49, 65, 3), np.uint8)
    image[:, -1] = 255  # a box drawn along the right edge
    none = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), ("with_mask",))
    sink = BrowserVideoSink(tmp_path / "annotated.mp4", 5.0)
    for index in range(3):
        sink.write(Frame(image, "clip.mp4", "clip", "video", index, index / 5, fps=5.0), none, image)
    sink.close()
    capture = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    ok, decoded = capture.read()
    capture.release()
    assert ok and decoded.shape[:2] == (50, 66) and decoded[:40, 64].mean() > 200
