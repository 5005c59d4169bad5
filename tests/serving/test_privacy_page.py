"""The live camera page of a server started with --privacy blur, in a real headless Chromium with a fake camera:
the page shows only the analysed frames, their face regions blurred (boxes still drawn), never the raw camera."""

from __future__ import annotations

import base64
import shutil

import cv2
import numpy as np
import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
FACE_BOXES = [(40, 50, 120, 150), (180, 60, 260, 170)]  # the scripted model's faces (conftest.FACES)
SEEDS = (1, 3, 4, 7, 9, 11, 19)  # cartoon scenes with detail in both face regions to lose
FAR = (290, 0, 320, 240)  # right of both enlarged face boxes


def write_y4m(frames: list[np.ndarray], out):
    import av

    with av.open(str(out), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=10)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def detail(image: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    gray = cv2.cvtColor(image[y1 + 8:y2 - 8, x1 + 8:x2 - 8], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_the_camera_page_of_a_blurring_server_shows_blurred_faces_only(start_server, tmp_path, serve_kit):
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (requirements-dev.txt)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    frames = [cv2.imread(str(serve_kit.write_photo(tmp_path / f"cam{i}.png", seed=i))) for i in SEEDS]
    camera = write_y4m(frames, tmp_path / "camera.y4m")
    server = start_server("--privacy", "blur")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)
        driver.get(server.url + "/")
        wait.until(lambda d: "model" in d.find_element(By.ID, "model-info").text)
        driver.find_element(By.ID, "camera-button").click()
        stats = driver.find_element(By.ID, "live-stats")
        wait.until(lambda d: int(stats.get_attribute("data-frames")) >= 5, "five live frames answered")
        assert driver.execute_script("return getComputedStyle(document.getElementById('camera')).visibility") == "hidden"
        data = driver.execute_script("return document.getElementById('overlay').toDataURL('image/png')")
    finally:
        driver.quit()
    shown = cv2.imdecode(np.frombuffer(base64.b64decode(data.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == frames[0].shape
    for box in FACE_BOXES:
        least = min(detail(f, box) for f in frames)  # whichever camera frame it was, it had this much detail or more
        assert least > 30
        assert detail(shown, box) <= 0.1 * least, (box, detail(shown, box), least)
    assert serve_kit.count_color(shown, serve_kit.green) > 100 and serve_kit.count_color(shown, serve_kit.red) > 100
    far = [detail(f, FAR) for f in frames]
    assert detail(shown, FAR) >= 0.5 * min(far) > 0  # the rest of the frame is shown as it is
