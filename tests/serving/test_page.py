"""The page in a real headless Chromium (Debian's, driven by Selenium) against a real serve.py.

Screenshots are kept as test artefacts: under the test's tmp dir, and copied to $MASKDET_ARTEFACTS
when it is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


@pytest.fixture
def browser(tmp_path, request):
    """browser(camera=None) -> a headless Chromium; with camera=FILE.y4m it is the fake webcam."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (requirements-dev.txt)")
    drivers = []

    def start(camera: Path | None = None):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1400",
                    "--disable-gpu", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                                  "download.prompt_for_download": False})
        if camera is not None:
            options.add_argument("--use-fake-ui-for-media-stream")  # allow the camera without a prompt
            options.add_argument("--use-fake-device-for-media-stream")
            options.add_argument(f"--use-file-for-fake-video-capture={camera}")
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
        driver.set_script_timeout(30)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()


def keep_screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "artefacts" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    if os.environ.get("MASKDET_ARTEFACTS"):
        target = Path(os.environ["MASKDET_ARTEFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
    return path


def png_pixels(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def wait(driver, condition, timeout: float = 60, message: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d), message)


def upload(driver, *paths: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))


def faces_of(card) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.text for row in card.find_elements(By.CSS_SELECTOR, "tr.face")]


def test_a_dropped_photo_comes_back_with_its_boxes_and_the_list_of_faces(start_server, browser, photo, tmp_path, serve_kit):
    from selenium.webdriver.common.by import By

    server = start_server()
    driver = browser()
    driver.get(server.url + "/")
    wait(driver, lambda d: "model scripted.onnx" in d.find_element(By.ID, "model-info").text, message="the model info")
    second = serve_kit.write_photo(tmp_path / "inputs" / "second.png", seed=2)
    upload(driver, photo, second)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.face")) == 4, message="two faces in each photo")
    card = driver.find_elements(By.CSS_SELECTOR, ".result")[-1]  # newest first: the last card is the first photo
    assert card.find_element(By.CSS_SELECTOR, ".name").text == "people.png"
    assert faces_of(card) == ["1 with_mask 0.90", "2 without_mask 0.80"]
    assert card.find_element(By.CSS_SELECTOR, ".counts").text == "1 with_mask, 1 without_mask"
    assert {b.text for b in card.find_elements(By.CSS_SELECTOR, ".downloads button")} == \
        {"annotated.png", "predictions.csv", "predictions.json"}
    image = card.find_element(By.CSS_SELECTOR, "img.annotated")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == serve_kit.photo_wh[0]
    shown = png_pixels(image.screenshot_as_png)  # the boxes as the browser shows them
    plain = cv2.imread(str(photo))
    assert serve_kit.count_color(shown, serve_kit.green) > serve_kit.count_color(plain, serve_kit.green) + 100
    assert serve_kit.count_color(shown, serve_kit.red) > serve_kit.count_color(plain, serve_kit.red) + 100
    keep_screenshot(driver, tmp_path, "page_photo")


def test_a_video_shows_progress_then_plays_in_the_browser(start_server, browser, video, tmp_path):
    from selenium.webdriver.common.by import By

    server = start_server()
    driver = browser()
    driver.get(server.url + "/")
    wait(driver, lambda d: "model" in d.find_element(By.ID, "model-info").text)
    upload(driver, video)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "video.annotated"), message="the annotated video")
    card = driver.find_element(By.CSS_SELECTOR, ".result")
    assert card.find_element(By.CSS_SELECTOR, ".status").text == "done: 6 frames"
    assert driver.execute_script("return arguments[0].value", card.find_element(By.CSS_SELECTOR, "progress")) == 1
    player = card.find_element(By.CSS_SELECTOR, "video.annotated")
    # Chromium decodes it: the first frame is there (readyState >= 2) at the video's size.
    wait(driver, lambda d: d.execute_script("return arguments[0].readyState", player) >= 2, 30, "the video to decode")
    assert driver.execute_script("return [arguments[0].videoWidth, arguments[0].error]", player) == [320, None]
    keep_screenshot(driver, tmp_path, "page_video")


def test_with_a_token_the_page_asks_for_it_once_then_works(start_server, browser, photo, tmp_path):
    from selenium.webdriver.common.by import By

    server = start_server("--token", "s3cret")
    driver = browser()
    driver.get(server.url + "/")
    form = wait(driver, lambda d: d.find_element(By.ID, "token-form").is_displayed() and d.find_element(By.ID, "token-form"))
    assert not driver.find_element(By.ID, "app").is_displayed()
    driver.find_element(By.ID, "token").send_keys("s3cret")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait(driver, lambda d: d.find_element(By.ID, "app").is_displayed(), message="the page after the token")
    upload(driver, photo)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.face")) == 2, message="the faces")
    # Downloads go through fetch() with the token (a plain link could not send it) and land as files.
    [button] = [b for b in driver.find_elements(By.CSS_SELECTOR, ".downloads button") if b.text == "predictions.csv"]
    button.click()
    saved = tmp_path / "downloads" / "predictions.csv"
    wait(driver, lambda d: saved.exists() and saved.read_text().count("\n") == 3, 30, "the downloaded CSV")
    assert saved.read_text().splitlines()[0].startswith("source,frame,timestamp,class_id,class_name,confidence")
    driver.refresh()  # asked once: the tab remembers it
    wait(driver, lambda d: d.find_element(By.ID, "app").is_displayed())
    assert not driver.find_element(By.ID, "token-form").is_displayed()


def write_y4m(frames: list[np.ndarray], out: Path, fps: int = 10) -> Path:
    """The fake camera's input: raw YUV 4:2:0 in a .y4m, written by FFmpeg (through PyAV)."""
    import av

    with av.open(str(out), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def test_the_camera_streams_live_frames_and_boxes_are_drawn_over_them(start_server, browser, tmp_path, serve_kit):
    from selenium.webdriver.common.by import By

    camera = write_y4m([cv2.imread(str(serve_kit.write_photo(tmp_path / f"cam{i}.png", seed=i))) for i in range(10)],
                       tmp_path / "camera.y4m")
    server = start_server()
    driver = browser(camera=camera)
    driver.get(server.url + "/")
    wait(driver, lambda d: "model" in d.find_element(By.ID, "model-info").text)
    driver.find_element(By.ID, "camera-button").click()
    stats = driver.find_element(By.ID, "live-stats")
    wait(driver, lambda d: int(stats.get_attribute("data-frames")) >= 5, message="five live frames answered")
    assert stats.get_attribute("data-boxes") == "2"
    assert "FPS" in stats.text and "with_mask 1" in stats.text and "without_mask 1" in stats.text
    # The overlay canvas over the live video has the boxes, in the classes' colours.
    counts = driver.execute_script("""
        const c = document.getElementById('overlay'); const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const near = (i, r, g, b) => Math.abs(px[i]-r) < 30 && Math.abs(px[i+1]-g) < 30 && Math.abs(px[i+2]-b) < 30 && px[i+3] > 200;
        let green = 0, red = 0;
        for (let i = 0; i < px.length; i += 4) { if (near(i, 76, 175, 80)) green++; if (near(i, 244, 67, 54)) red++; }
        return [c.width, green, red];""")
    assert counts[0] > 0 and counts[1] > 100 and counts[2] > 100, counts
    keep_screenshot(driver, tmp_path, "page_camera")
    driver.find_element(By.ID, "camera-button").click()
    assert driver.find_element(By.ID, "camera-button").text == "Use my camera"


def test_the_api_docs_show_the_token_header_and_an_authorize_button(browser, start_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = start_server("--token", "s3cret")
    driver = browser()
    driver.get(f"{server.url}/docs")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".info .description"))
    description = driver.find_element(By.CSS_SELECTOR, ".info .description").text
    keep_screenshot(driver, tmp_path, "docs")
    assert "Authorization: Bearer <token>" in description, description
    assert driver.find_elements(By.CSS_SELECTOR, "button.authorize"), "no Authorize button"
