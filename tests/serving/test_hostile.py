"""Hostile input over real HTTP to a real serve.py (uvicorn on 127.0.0.1): each is refused with a JSON
error, the server's memory stays bounded (its peak RSS, VmHWM in /proc/<pid>/status, and the bytes it
wrote, wchar in /proc/<pid>/io), and it still answers afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import select
import socket
import time
from pathlib import Path

import cv2
import httpx2
import numpy as np
import pytest
from live_socket import LiveSocket, a_camera_is_let_in, send_until_the_server_stops_reading

from maskdet.serving.jobs import MARKER

MB = 2**20
MEMORY_ROOM = 200 * MB  # what a refused request may add to the server's peak RSS; the bombs below decode to GBs


# --- tools -------------------------------------------------------------------------------------


def proc_value(server, table: str, key: str) -> int:
    for line in Path(f"/proc/{server.process.proc.pid}/{table}").read_text().splitlines():
        if line.startswith(key + ":"):
            value = line.split()[1:]
            return int(value[0]) * (1024 if value[1:] == ["kB"] else 1)
    raise AssertionError(f"no {key} in /proc/<pid>/{table}")


def peak_rss(server) -> int:
    return proc_value(server, "status", "VmHWM")


def bytes_written(server) -> int:
    return proc_value(server, "io", "wchar")


def warm(server, photo) -> None:
    """One ordinary photo first: the model's own first-run allocations are not the hostile input's."""
    with open(photo, "rb") as f:
        assert httpx2.post(f"{server.url}/api/detect", files={"file": ("p.png", f)}, timeout=60).status_code == 200


def still_answers(server, photo) -> None:
    assert server.process.running(), server.process.stderr[-3000:]
    warm(server, photo)
    assert "Traceback" not in server.process.stderr


@pytest.fixture(scope="module")
def png_bomb(serve_kit) -> bytes:
    data = serve_kit.blank_png(20_000, 20_000, bad_crc=True)
    from PIL import PngImagePlugin

    # the bypass: Pillow cannot size it (its PNG reader directly: Ultralytics, once imported, wraps Image.open)
    with pytest.raises(SyntaxError, match="broken PNG file"):
        PngImagePlugin.PngImageFile(io.BytesIO(data))
    small = serve_kit.blank_png(40, 1000, bad_crc=True)  # the same construction, small: OpenCV decodes it
    assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR).shape == (1000, 40, 3)
    return data


@pytest.fixture(scope="module")
def video_bomb(tmp_path_factory) -> Path:
    """A real H.264 MP4 of one 8192 x 8192 blank frame: about 200 KB, 100 MB a decoded frame."""
    import av

    path = tmp_path_factory.mktemp("bombs") / "huge.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 8192
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "51", "threads": "1"}
        frame = av.VideoFrame(8192, 8192, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    assert path.stat().st_size < 1 * MB
    return path


def refused(live: LiveSocket) -> bool:
    """Refused before the socket opened (HTTP 403), or closed at once with 1008 (policy violation)."""
    from wsproto.events import CloseConnection, RejectConnection

    event = live.opening if not live.accepted else live.next_event()
    return isinstance(event, RejectConnection) or (isinstance(event, CloseConnection) and event.code == 1008)


def assert_json_error(response: httpx2.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- pixels ------------------------------------------------------------------------------------


def test_a_png_pillow_cannot_size_is_measured_from_its_header_and_refused_on_detect_and_live(start_server, photo,
                                                                                           png_bomb):
    server = start_server()
    warm(server, photo)
    before = peak_rss(server)
    response = httpx2.post(f"{server.url}/api/detect", files={"file": ("bomb.png", png_bomb)}, timeout=60)
    assert_json_error(response, 413, "bomb.png", "20000x20000", "megapixel")
    live = LiveSocket(server.port, "/api/live")
    assert live.accepted
    live.send(png_bomb)
    assert "20000x20000" in live.receive_json()["error"]
    live.send(cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes())  # the socket goes on
    assert len(live.receive_json()["detections"]) == 2
    live.close()
    assert peak_rss(server) - before < MEMORY_ROOM, f"peak RSS grew {(peak_rss(server) - before) / MB:.0f} MB"
    still_answers(server, photo)


def test_a_video_with_huge_frames_is_refused_from_its_container_header_before_decoding(start_server, photo, video_bomb):
    server = start_server()
    warm(server, photo)
    before = peak_rss(server)
    with open(video_bomb, "rb") as f:
        response = httpx2.post(f"{server.url}/api/videos", files={"file": ("huge.mp4", f)}, timeout=60)
    assert_json_error(response, 413, "huge.mp4", "8192x8192", "megapixel")
    assert peak_rss(server) - before < MEMORY_ROOM, f"peak RSS grew {(peak_rss(server) - before) / MB:.0f} MB"
    runs = Path(server.process.stdout_path).parent.parent / "runs"
    assert [p for p in runs.rglob("*") if p.is_file() and p.name != MARKER] == []  # (the marker: the run folder is a server's)
    still_answers(server, photo)


# --- bytes -------------------------------------------------------------------------------------


def offer_chunked(server, photo: Path, offered: int, headers: str = "") -> tuple[int, dict, int]:
    """POST a chunked multipart upload of `offered` bytes to /api/detect, stopping as soon as the server
    answers: (status, JSON body, bytes sent by then)."""
    boundary = "hostile"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + photo.read_bytes()
    chunk = 64 * 1024
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall((f"POST /api/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n{headers}"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode())
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            while sent < offered and not select.select([sock], [], [], 0)[0]:  # until the server answers
                sock.sendall(b"%x\r\n%s\r\n" % (chunk, b"\x00" * chunk))
                sent += chunk
            if sent >= offered:
                tail = f"\r\n--{boundary}--\r\n".encode()
                sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2]), sent


def test_a_chunked_upload_is_cut_off_at_the_limit_not_read_to_its_end(start_server, photo):
    server = start_server("--max-upload-mb", "1")
    warm(server, photo)
    written, peak = bytes_written(server), peak_rss(server)
    status, body, sent = offer_chunked(server, photo, 64 * MB)  # before the fix, all 64 MB were spooled to disk first
    assert sent < 16 * MB, f"the server read {sent / MB:.0f} MB before answering"
    assert status == 413 and "limit is 1 MiB" in body["error"], (status, body)
    assert bytes_written(server) - written < 4 * MB, "the body was spooled to disk past the limit"
    assert peak_rss(server) - peak < MEMORY_ROOM
    still_answers(server, photo)


# --- requests that are not what the API expects --------------------------------------------------


def test_a_text_message_on_the_live_socket_closes_it_as_unsupported_data_and_the_server_goes_on(start_server, photo):
    """The page sends only binary frames; answering text would let a client flood the server's event loop."""
    from wsproto.events import CloseConnection

    server = start_server()
    live = LiveSocket(server.port, "/api/live")
    assert live.accepted
    live.send("hello")
    event = live.next_event(within=20)
    assert isinstance(event, CloseConnection) and event.code == 1003 and "binary message" in event.reason, event
    live.close()
    camera = LiveSocket(server.port, "/api/live")
    camera.send(cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes())
    assert camera.receive_json()["counts"] == {"with_mask": 1, "without_mask": 1}
    camera.close()
    assert "KeyError" not in server.process.stderr and "Traceback" not in server.process.stderr


def test_live_cameras_past_max_live_are_closed_with_try_again_later_until_one_leaves(start_server, photo, serve_kit):
    """Each open live socket may hold a frame in memory while it arrives: their number is bounded."""
    from wsproto.events import CloseConnection

    server = start_server("--max-live", "2")
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    first, second = LiveSocket(server.port, "/api/live"), LiveSocket(server.port, "/api/live")
    for live in (first, second):
        live.send(frame)
        assert live.receive_json()["counts"] == {"with_mask": 1, "without_mask": 1}
    third = LiveSocket(server.port, "/api/live")
    event = third.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1013 and "--max-live" in event.reason, event
    first.close()
    serve_kit.wait_for(lambda: a_camera_is_let_in(server.port, frame), 30, message="a live camera to be let in after one left")
    second.close()
    still_answers(server, photo)


LIVE_TIMEOUT_S = 1.0  # for the cameras that go quiet
IN_TIME_LIVE_TIMEOUT_S = 3.0  # for the camera that must beat it: room for a loaded machine between frames


def test_a_live_camera_that_goes_quiet_is_closed_after_live_timeout_and_its_slot_freed(start_server, photo, serve_kit):
    """Without the timeout, --max-live quiet sockets would lock every camera out for as long as they like."""
    from wsproto.events import CloseConnection

    server = start_server("--max-live", "1", "--live-timeout", LIVE_TIMEOUT_S)
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    quiet = LiveSocket(server.port, "/api/live")
    quiet.send(frame)
    assert quiet.receive_json()["counts"] == {"with_mask": 1, "without_mask": 1}
    answered = time.monotonic()
    event = quiet.next_event(within=20)  # then it sends nothing more
    waited = time.monotonic() - answered
    assert isinstance(event, CloseConnection) and event.code == 1001 and "--live-timeout" in event.reason, event
    assert LIVE_TIMEOUT_S * 0.9 <= waited < 20, waited
    quiet.close()
    serve_kit.wait_for(lambda: a_camera_is_let_in(server.port, frame), 10, message="a camera let in after the quiet one")
    still_answers(server, photo)


def test_a_live_frame_trickled_in_is_cut_off_at_the_live_timeout(start_server, photo):
    """A frame's bytes a little at a time keep the socket busy without ever making a frame."""
    from wsproto.events import BytesMessage, CloseConnection

    server = start_server("--max-live", "1", "--live-timeout", LIVE_TIMEOUT_S)
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    trickle = LiveSocket(server.port, "/api/live")
    wire = trickle.ws.send(BytesMessage(frame))
    sent = 0
    try:
        while sent < len(wire) and not select.select([trickle.sock], [], [], 0)[0]:
            trickle.sock.sendall(wire[sent:sent + 16])
            sent += 16
            time.sleep(0.1)  # the trickle itself, not a wait for readiness
    except (BrokenPipeError, ConnectionResetError):
        pass
    event = trickle.next_event(within=20)
    assert isinstance(event, CloseConnection) and event.code == 1001 and "--live-timeout" in event.reason, event
    assert sent < len(wire) // 2, (sent, len(wire))
    trickle.close()
    assert a_camera_is_let_in(server.port, frame)


def test_a_camera_that_keeps_sending_frames_outlives_the_live_timeout(start_server, photo):
    """The timeout is for each frame, not for the camera: one that keeps sending stays on."""
    server = start_server("--live-timeout", IN_TIME_LIVE_TIMEOUT_S)
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    live = LiveSocket(server.port, "/api/live")
    started = time.monotonic()
    while time.monotonic() - started < IN_TIME_LIVE_TIMEOUT_S * 2.5:
        live.send(frame)
        assert live.receive_json()["counts"] == {"with_mask": 1, "without_mask": 1}
    live.close()


def test_a_camera_that_sends_only_frames_that_are_not_images_is_closed_after_live_timeout(start_server, photo,
                                                                                          serve_kit):
    """Each bad frame is answered with an error, but only a camera frame moves the deadline on: bytes that are
    not an image, sent without end, would otherwise hold a --max-live slot for ever."""
    from wsproto.events import CloseConnection, TextMessage

    server = start_server("--max-live", "1", "--live-timeout", LIVE_TIMEOUT_S)
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    pretender = LiveSocket(server.port, "/api/live")
    started, errors = time.monotonic(), 0
    while True:
        pretender.send(b"not a camera frame")
        event = pretender.next_event(within=20)
        if not isinstance(event, TextMessage):
            break
        assert "error" in json.loads(event.data), event
        errors += 1
        assert time.monotonic() - started < 20, f"still open after {errors} bad frames"
        time.sleep(LIVE_TIMEOUT_S / 4)  # the pace of the bad frames, not a wait for readiness
    waited = time.monotonic() - started
    assert isinstance(event, CloseConnection) and event.code == 1001 and "--live-timeout" in event.reason, event
    assert errors >= 2 and LIVE_TIMEOUT_S * 0.9 <= waited < 20, (errors, waited)
    pretender.close()
    serve_kit.wait_for(lambda: a_camera_is_let_in(server.port, frame), 10, message="a camera let in after the pretender")
    still_answers(server, photo)


def test_a_camera_that_reads_no_answers_loses_its_slot(start_server, photo, serve_kit):
    """Bad frames are answered with an error at little cost to the server: sent without end and never read, the
    answers fill the connection and the server stops reading it. Its slot is given up all the same."""
    from wsproto.events import BytesMessage

    server = start_server("--max-live", "1", "--live-timeout", LIVE_TIMEOUT_S)
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    deaf = LiveSocket(server.port, "/api/live")
    send_until_the_server_stops_reading(deaf.sock, deaf.ws.send(BytesMessage(b"x")) * 1024)
    serve_kit.wait_for(lambda: a_camera_is_let_in(server.port, frame), 20, message="a camera let in beside the deaf one")
    deaf.close()
    still_answers(server, photo)


def test_a_live_frame_over_the_frame_limit_closes_the_socket_with_message_too_big(start_server, photo):
    """uvicorn's default would buffer 16 MiB per socket; a camera frame is a few hundred KB."""
    from wsproto.events import CloseConnection

    server = start_server()
    live = LiveSocket(server.port, "/api/live")
    assert live.accepted
    live.send(bytes(9 * MB))
    event = live.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1009, event
    still_answers(server, photo)


def test_many_files_in_one_request_are_refused_not_answered_for_the_last_one(start_server, photo, video):
    server = start_server()
    files = [("file", (f"p{i}.png", photo.read_bytes())) for i in range(50)]
    assert_json_error(httpx2.post(f"{server.url}/api/detect", files=files, timeout=60), 400, "50 files", "one file")
    two = [("file", ("a.mp4", video.read_bytes())), ("other", ("b.mp4", video.read_bytes()))]
    assert_json_error(httpx2.post(f"{server.url}/api/videos", files=two, timeout=60), 400, "2 files")
    still_answers(server, photo)


# --- tokens ------------------------------------------------------------------------------------


def test_a_wrong_an_empty_or_a_misplaced_token_is_refused_on_every_route_and_the_live_socket(start_server, photo):
    server = start_server("--token", "s3cret")
    job = "0" * 32
    routes = [("GET", "/api/health", None), ("POST", "/api/detect", {"file": ("p.png", photo.read_bytes())}),
              ("POST", "/api/videos", {"file": ("v.mp4", b"\x00\x00\x00\x18ftypmp42")}),
              ("GET", f"/api/videos/{job}", None), ("GET", f"/api/files/{job}/predictions.csv", None)]
    wrong = [({"Authorization": "Bearer wrong"}, ""), ({"Authorization": "Bearer"}, ""), ({"Authorization": ""}, ""),
             ({"Authorization": "Bearer s3cret2"}, ""), ({"Authorization": "Basic s3cret"}, ""),
             ({}, "?token=s3cret"), ({"X-Token": "s3cret"}, ""), ({"Cookie": "token=s3cret"}, "")]
    for method, path, files in routes:
        for headers, query in wrong:
            response = httpx2.request(method, f"{server.url}{path}{query}", headers=headers, files=files, timeout=30)
            assert_json_error(response, 401, "token")
    for target, headers in [("/api/live?token=wrong", None), ("/api/live?token=", None), ("/api/live", None),
                            ("/api/live?token=s3cre", None), ("/api/live", [("Authorization", "Bearer s3cret")])]:
        live = LiveSocket(server.port, target, headers)
        assert refused(live), (target, live.opening)
        live.close()
    written = bytes_written(server)
    status, body, sent = offer_chunked(server, photo, 32 * MB, "Authorization: Bearer wrong\r\n")
    assert status == 401 and "token" in body["error"], (status, body)
    assert sent < 8 * MB and bytes_written(server) - written < 1 * MB  # refused before its body was read
    good = {"Authorization": "Bearer s3cret"}
    assert httpx2.get(f"{server.url}/api/health", headers=good).status_code == 200
    live = LiveSocket(server.port, "/api/live?token=s3cret")
    assert live.accepted
    live.send(cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes())
    assert live.receive_json()["counts"]
    live.close()


# --- what the server writes --------------------------------------------------------------------


def test_a_file_name_that_is_a_formula_is_written_to_predictions_csv_as_text(start_server, photo):
    server = start_server()
    name = "=SUM(1+1)*cmd|calc!A0.png"
    with open(photo, "rb") as f:
        body = httpx2.post(f"{server.url}/api/detect", params={"save": "true"}, files={"file": (name, f)}, timeout=60).json()
    assert body["source"] == name  # the JSON keeps it as it was: JSON is not a spreadsheet
    text = httpx2.get(server.url + body["files"]["predictions.csv"]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 and {row["source"] for row in rows} == {"'" + name}
