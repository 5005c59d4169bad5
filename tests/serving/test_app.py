"""What a client of a real serve.py (uvicorn on 127.0.0.1) is told when it gets something wrong: every refusal
names the problem, the live socket says why it closes, a video cut short says so, and the docs list every answer."""

from __future__ import annotations

import re
from urllib.parse import quote

import cv2
import httpx2
import numpy as np
import pytest
from live_socket import LiveSocket

MIB = 2**20


def refusal(response: httpx2.Response, status: int) -> str:
    """The JSON error of a refusal (never text, never a traceback)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json", response.headers
    assert "Traceback" not in response.text
    return response.json()["error"]


def closing(live: LiveSocket):
    """The close the server sends, after accepting the socket so that the client gets its code and reason."""
    from wsproto.events import CloseConnection

    assert live.accepted, live.opening  # not an HTTP 403 without a word
    event = live.next_event(within=20)
    assert isinstance(event, CloseConnection), event
    return event


def camera_frame(photo) -> bytes:
    return cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()


# --- the framework's own refusals --------------------------------------------------------------


def test_an_unknown_path_names_the_method_and_path_and_a_wrong_method_names_the_ones_it_takes(start_server):
    server = start_server()
    message = refusal(httpx2.get(f"{server.url}/api/detections"), 404)
    assert "GET /api/detections" in message and "/docs" in message, message
    assert "/static/nothing.js" in refusal(httpx2.get(f"{server.url}/static/nothing.js"), 404)
    message = refusal(httpx2.delete(f"{server.url}/api/health"), 405)
    assert "DELETE /api/health" in message and re.search(r"\bGET\b", message), message
    message = refusal(httpx2.get(f"{server.url}/api/detect"), 405)
    assert "GET /api/detect" in message and "POST" in message, message


def test_a_path_a_client_makes_up_is_shown_cut_short(start_server):
    server = start_server()
    message = refusal(httpx2.get(f"{server.url}/{'x' * 5000}"), 404)
    assert len(message) < 400 and "xxx..." in message, message


# --- the live camera -----------------------------------------------------------------------------


@pytest.mark.parametrize("target, said", [("/api/live?token=wrong", "wrong token"), ("/api/live?token=", "needs a token"),
                                          ("/api/live", "needs a token")])
def test_the_live_socket_says_why_a_token_is_refused_so_the_page_can_say_it(start_server, target, said):
    server = start_server("--token", "s3cret")
    live = LiveSocket(server.port, target)
    event = closing(live)
    assert event.code == 1008 and said in event.reason, event
    live.close()


@pytest.mark.parametrize("asked", ["bogus", "Blur", "BLUR", "on", "", "blur " * 60])
def test_a_live_camera_asking_for_a_privacy_there_is_not_is_refused_before_any_frame(start_server, photo, asked):
    """Blurring silently off for `?privacy=Blur` would show faces the client asked to hide: refused, as /api/detect does."""
    server = start_server()
    live = LiveSocket(server.port, f"/api/live?privacy={quote(asked)}")
    event = closing(live)
    assert event.code == 1008 and "privacy must be off or blur" in event.reason, event
    assert len(event.reason.encode()) <= 123
    live.close()
    assert refusal(httpx2.post(f"{server.url}/api/detect", params={"privacy": asked},  # as the photo API does
                               files={"file": ("p.png", photo.read_bytes())}, timeout=60), 400)
    blurred = LiveSocket(server.port, "/api/live?privacy=blur")  # what it may ask for, it gets
    blurred.send(camera_frame(photo))
    assert len(blurred.receive_json()["blur"]) == 2
    blurred.close()


# --- videos --------------------------------------------------------------------------------------


def wait_finished(server, job_id: str, serve_kit) -> dict:
    def finished():
        status = httpx2.get(f"{server.url}/api/videos/{job_id}", timeout=30).json()
        return status if status["status"] in ("done", "failed") else None

    return serve_kit.wait_for(finished, 120, message=f"video job {job_id}")


def write_avi(path, frames: int, photo) -> None:
    """An AVI (Motion JPEG) of the photo moving: its header says how many frames it has, so a cut file can be told
    from a whole one."""
    image = cv2.imread(str(photo))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, image.shape[1::-1])
    for i in range(frames):
        writer.write(np.roll(image, i, axis=1))
    writer.release()


def test_a_truncated_video_is_done_with_what_it_had_and_says_it_stopped_early(start_server, photo, tmp_path, serve_kit):
    server = start_server()
    whole = tmp_path / "whole.avi"
    write_avi(whole, 30, photo)
    data = whole.read_bytes()
    started = httpx2.post(f"{server.url}/api/videos", files={"file": ("door.avi", data[: len(data) // 2])}, timeout=60)
    assert started.status_code == 202, started.text
    status = wait_finished(server, started.json()["id"], serve_kit)
    assert status["status"] == "done" and status["error"] is None  # what was read is a result
    assert status["total"] == 30 and 5 <= status["frames"] < 30, status
    assert "stopped early" in status["warning"] and f"{status['frames']} of 30 frames" in status["warning"], status
    assert "door.avi" in status["warning"] and str(tmp_path) not in status["warning"]  # the client's name, not a path
    assert httpx2.get(server.url + status["files"]["annotated.mp4"], timeout=60).status_code == 200

    whole_job = httpx2.post(f"{server.url}/api/videos", files={"file": ("whole.avi", data)}, timeout=60).json()
    assert wait_finished(server, whole_job["id"], serve_kit)["warning"] is None  # a whole video: no warning


def test_a_video_past_the_video_job_limit_is_told_the_limit_not_that_every_worker_is_taken(start_server, tmp_path, serve_kit):
    server = start_server("--max-video-jobs", "1")
    long_video = serve_kit.write_video(tmp_path / "long.mp4", frames=600)
    first = httpx2.post(f"{server.url}/api/videos", files={"file": ("long.mp4", long_video.read_bytes())}, timeout=60)
    assert first.status_code == 202, first.text
    second = httpx2.post(f"{server.url}/api/videos", files={"file": ("next.mp4", long_video.read_bytes())}, timeout=60)
    message = refusal(second, 503)
    assert "video-job limit" in message and "--max-video-jobs" in message and "1 video" in message, message
    assert "worker" not in message
    assert int(second.headers["retry-after"]) >= 1


# --- sizes ---------------------------------------------------------------------------------------


def test_a_file_just_over_the_upload_limit_is_told_its_size_in_mib_visibly_over_the_limit(start_server):
    server = start_server("--max-upload-mb", "1")
    size = MIB + 500  # 1.0005 MiB: "1.0 MB, over the 1 MB limit" said nothing
    message = refusal(httpx2.post(f"{server.url}/api/detect", files={"file": ("big.jpg", b"\xff\xd8\xff" + bytes(size - 3))},
                                  timeout=60), 413)
    shown = re.search(r"big\.jpg: ([0-9.]+) MiB, over the 1 MiB limit", message)
    assert shown and float(shown.group(1)) > 1 and abs(float(shown.group(1)) - size / MIB) < 0.001, message
    message = refusal(httpx2.post(f"{server.url}/api/detect", content=bytes(3 * MIB),
                                  headers={"content-type": "multipart/form-data; boundary=x"}, timeout=60), 413)
    assert "3.0 MiB" in message and "the limit is 1 MiB" in message, message


# --- the docs ------------------------------------------------------------------------------------


def test_the_docs_list_every_answer_of_the_fleet_api(start_server):
    server = start_server()
    schema = httpx2.get(f"{server.url}/openapi.json").json()
    responses = schema["paths"]["/api/fleet"]["get"]["responses"]
    assert {"200", "401", "404", "503"} <= set(responses), responses
    for status in ("401", "404", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "--db" in responses["404"]["description"] and "cannot be read" in responses["503"]["description"]
