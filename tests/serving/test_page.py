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
    """browser(camera=None, size=(w, h)) -> a headless Chromium; with camera=FILE.y4m it is the fake webcam."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (requirements-dev.txt)")
    drivers = []

    def start(camera: Path | None = None, size: tuple[int, int] = (1100, 1400)):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={size[0]},{size[1]}",
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
        if size[0] < 500:  # Chromium's windows are at least 500 px wide: a phone's screen is emulated instead
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True})
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


def test_a_dropped_photo_comes_back_with_numbered_boxes_the_list_of_faces_and_downloads_named_after_it(
        start_server, browser, photo, tmp_path, serve_kit):
    from selenium.webdriver.common.by import By

    server = start_server()
    driver = browser()
    driver.get(server.url + "/")
    wait(driver, lambda d: "model scripted.onnx" in d.find_element(By.ID, "model-info").text, message="the model info")
    assert "mask worn incorrectly" in driver.find_element(By.ID, "model-info").text  # words, not mask_weared_incorrect
    second = serve_kit.write_photo(tmp_path / "inputs" / "second.png", seed=2)
    upload(driver, photo, second)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.face")) == 4, message="two faces in each photo")
    card = driver.find_elements(By.CSS_SELECTOR, ".result")[-1]  # newest first: the last card is the first photo
    assert card.find_element(By.CSS_SELECTOR, ".name").text == "people.png"
    assert faces_of(card) == ["1 mask worn 0.90", "2 no mask 0.80"]
    assert card.find_element(By.CSS_SELECTOR, ".counts").text == "2 faces: 1 mask worn, 1 no mask"
    # The table's numbers are on the boxes, in a size a person reads.
    tags = card.find_elements(By.CSS_SELECTOR, ".photo .box .tag")
    assert [t.text for t in tags] == ["1", "2"]
    assert all(float(t.value_of_css_property("font-size").removesuffix("px")) >= 12 for t in tags)
    assert {(b.text, b.get_attribute("data-name")) for b in card.find_elements(By.CSS_SELECTOR, ".downloads button")} == \
        {("photo with boxes", "people_annotated.png"), ("table (CSV)", "people_faces.csv"), ("data (JSON)", "people_faces.json")}
    image = card.find_element(By.CSS_SELECTOR, "img.annotated")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == serve_kit.photo_wh[0]
    shown = png_pixels(card.find_element(By.CSS_SELECTOR, ".photo").screenshot_as_png)  # the boxes as the browser shows them
    plain = cv2.imread(str(photo))
    assert serve_kit.count_color(shown, serve_kit.green) > serve_kit.count_color(plain, serve_kit.green) + 100
    assert serve_kit.count_color(shown, serve_kit.red) > serve_kit.count_color(plain, serve_kit.red) + 100
    keep_screenshot(driver, tmp_path, "page_photo")
    # The confidence control: at 0.85 the 0.80 face leaves the photo, the table and the counts.
    driver.execute_script("const s = document.getElementById('conf'); s.value = '0.85';"
                          "s.dispatchEvent(new Event('input', {bubbles: true}));")
    assert [row for row in faces_of(card) if row] == ["1 mask worn 0.90"]  # a hidden row has no text
    assert [t.text for t in card.find_elements(By.CSS_SELECTOR, ".photo .box .tag") if t.is_displayed()] == ["1"]
    assert card.find_element(By.CSS_SELECTOR, ".counts").text == "1 face: 1 mask worn"
    assert "1 face below confidence 0.85 hidden" in card.find_element(By.CSS_SELECTOR, ".status").text


@pytest.mark.parametrize("width", [390, 600, 1280])
def test_the_photo_fills_the_width_there_is_and_nothing_scrolls_sideways(start_server, browser, tmp_path, serve_kit, width):
    """A phone (390 px), a small tablet (600 px) and a laptop (1280 px): the photo as wide as the page allows (never 0, never capped at
    480 px, never wider than the photo), every control reachable with Tab, no sideways scrolling."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    big = tmp_path / "inputs" / "a_long_file_name_as_phones_write_them_IMG_20261205_123456789_HDR_portrait.jpg"
    big.parent.mkdir(parents=True, exist_ok=True)
    small = cv2.imread(str(serve_kit.write_photo(tmp_path / "inputs" / "small.png")))
    assert cv2.imwrite(str(big), cv2.resize(small, (1280, 960)))  # the scripted model's boxes scale with it
    server = start_server()
    driver = browser(size=(width, 900))
    driver.get(server.url + "/")
    wait(driver, lambda d: "model" in d.find_element(By.ID, "model-info").text)
    inner = driver.execute_script("return window.innerWidth")
    assert inner == width
    reached = []
    for _ in range(6):  # the controls, in order, from the keyboard
        driver.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(driver.execute_script("return document.activeElement.id"))
    assert reached[:3] == ["choose", "camera-button", "conf"], reached
    upload(driver, big)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.face")) == 2, message="the faces")
    image = driver.find_element(By.CSS_SELECTOR, "img.annotated")
    wait(driver, lambda d: d.execute_script("return arguments[0].complete", image))
    shown_w, shown_h = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", image)
    column = driver.execute_script("return document.querySelector('.result .media').getBoundingClientRect().width")
    keep_screenshot(driver, tmp_path, f"page_photo_{width}px")
    if width < 760:
        room = driver.execute_script("return document.documentElement.clientWidth")  # less a scrollbar, if any
        assert shown_w >= room - 40, (shown_w, room)  # the whole width of the screen, less the margins
    else:
        tall = driver.execute_script("return window.innerHeight")  # no taller than 80% of the screen
        assert 600 < shown_w <= 1280 and shown_w >= min(column, 0.8 * tall * 4 / 3) - 1, (shown_w, column, tall)
        table = driver.find_element(By.CSS_SELECTOR, ".faces").rect
        assert table["x"] >= image.rect["x"] + shown_w  # the list beside the photo, not under it
    assert abs(shown_h - shown_w * 960 / 1280) < 2  # not stretched
    assert driver.execute_script("return document.documentElement.scrollWidth") <= inner
    name = driver.find_element(By.CSS_SELECTOR, ".result .name").rect
    assert name["x"] >= 0 and name["x"] + name["width"] <= inner  # the long name wraps instead of being cut
    tags = driver.find_elements(By.CSS_SELECTOR, ".photo .box .tag")
    assert [t.text for t in tags] == ["1", "2"]


def test_a_video_counts_people_not_boxes_and_draws_when_each_was_in_view(start_server, browser, video, tmp_path):
    from selenium.webdriver.common.by import By

    server = start_server()
    driver = browser()
    driver.get(server.url + "/")
    wait(driver, lambda d: "model" in d.find_element(By.ID, "model-info").text)
    upload(driver, video)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "video.annotated"), message="the annotated video")
    card = driver.find_element(By.CSS_SELECTOR, ".result")
    wait(driver, lambda d: card.find_element(By.CSS_SELECTOR, ".status").text.startswith("Done"), 30, "the people")
    assert card.find_element(By.CSS_SELECTOR, ".status").text.startswith("Done: 0.6 s of video, 6 frames.")
    # Two faces in each of 6 frames: 2 people (as --track counts them), not "6 mask worn, 6 no mask".
    assert card.find_element(By.CSS_SELECTOR, ".counts").text == "2 people: 1 mask worn, 1 no mask"
    lanes = card.find_elements(By.CSS_SELECTOR, ".timeline .lane")
    assert [lane.get_attribute("data-verdict") for lane in lanes] == ["with_mask", "without_mask"]
    assert all(lane.rect["width"] > 100 for lane in lanes)  # in view for most of the clip
    player = card.find_element(By.CSS_SELECTOR, "video.annotated")
    # Chromium decodes it: the first frame is there (readyState >= 2) at the video's size.
    wait(driver, lambda d: d.execute_script("return arguments[0].readyState", player) >= 2, 30, "the video to decode")
    assert driver.execute_script("return [arguments[0].videoWidth, arguments[0].error]", player) == [320, None]
    assert player.rect["width"] >= card.rect["width"] - 2  # the player takes the card's width: no empty column beside it
    assert {b.get_attribute("data-name") for b in card.find_elements(By.CSS_SELECTOR, ".downloads button")} == \
        {"clip_annotated.mp4", "clip_faces.csv", "clip_faces.json", "clip_people.json"}
    keep_screenshot(driver, tmp_path, "page_video")


def test_a_truncated_video_is_shown_with_what_was_read_and_a_warning_that_it_stopped_early(start_server, browser, photo,
                                                                                           tmp_path):
    from selenium.webdriver.common.by import By

    image = cv2.imread(str(photo))
    whole = tmp_path / "whole.avi"  # an AVI's header says how many frames it has
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, image.shape[1::-1])
    for i in range(30):
        writer.write(np.roll(image, i, axis=1))
    writer.release()
    cut = tmp_path / "door.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    server = start_server()
    driver = browser()
    driver.get(server.url + "/")
    wait(driver, lambda d: "model" in d.find_element(By.ID, "model-info").text)
    upload(driver, cut)
    card = driver.find_element(By.CSS_SELECTOR, ".result")
    wait(driver, lambda d: card.find_element(By.CSS_SELECTOR, ".status").text.startswith("Done"), 60, "the video")
    status = card.find_element(By.CSS_SELECTOR, ".status").text
    assert "Warning: stopped early" in status and "of 30 frames" in status, status
    assert card.find_elements(By.CSS_SELECTOR, "video.annotated")  # what was read is shown


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
    [button] = [b for b in driver.find_elements(By.CSS_SELECTOR, ".downloads button") if b.text == "table (CSV)"]
    button.click()
    saved = tmp_path / "downloads" / "people_faces.csv"  # named after the photo
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


def press_use_my_camera(driver, server):
    """The page opened, its model shown, the camera button pressed: the live stats line, to wait on."""
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/")
    wait(driver, lambda d: "model" in d.find_element(By.ID, "model-info").text)
    driver.find_element(By.ID, "camera-button").click()
    return driver.find_element(By.ID, "live-stats")


def test_the_camera_streams_live_frames_and_boxes_are_drawn_over_them(start_server, browser, tmp_path, serve_kit):
    from selenium.webdriver.common.by import By

    camera = write_y4m([cv2.imread(str(serve_kit.write_photo(tmp_path / f"cam{i}.png", seed=i))) for i in range(10)],
                       tmp_path / "camera.y4m")
    server = start_server()
    driver = browser(camera=camera)
    stats = press_use_my_camera(driver, server)
    wait(driver, lambda d: int(stats.get_attribute("data-frames")) >= 5, message="five live frames answered")
    assert stats.get_attribute("data-boxes") == "2"
    assert "frames a second" in stats.text and "mask worn 1" in stats.text and "no mask 1" in stats.text
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
    # Stopped: neither the last frame's boxes nor its frame rate stay on screen as if live.
    assert not driver.find_element(By.ID, "overlay").is_displayed() and not driver.find_element(By.ID, "camera").is_displayed()
    assert driver.execute_script("""const c = document.getElementById('overlay');
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0);""") is False
    assert stats.text == "The camera is off." and stats.get_attribute("data-boxes") == "0"


def test_when_the_server_closes_the_camera_the_page_says_why(start_server, browser, tmp_path, serve_kit):
    """Busy (every --max-live slot taken, here by a camera of the test's own): the server's reason, not
    "connection lost", and the camera is off."""
    from live_socket import LiveSocket
    from selenium.webdriver.common.by import By

    camera = write_y4m([cv2.imread(str(serve_kit.write_photo(tmp_path / "cam.png", seed=0)))] * 3, tmp_path / "camera.y4m")
    server = start_server("--max-live", "1")
    holder = LiveSocket(server.port, "/api/live")
    assert holder.accepted
    driver = browser(camera=camera)
    stats = press_use_my_camera(driver, server)
    wait(driver, lambda d: "--max-live" in stats.text, message="the page to say the server is busy")
    assert stats.text.startswith("The server closed the camera: busy: 1 camera is live (--max-live)"), stats.text
    assert driver.find_element(By.ID, "camera-button").text == "Use my camera"
    assert not driver.find_element(By.ID, "camera").is_displayed()
    holder.close()


def test_a_hidden_page_gives_its_camera_back_and_takes_it_again_when_shown(start_server, browser, tmp_path, serve_kit):
    """Nobody watches a hidden tab, and a browser may stop sending its frames (the server would then close the
    camera after --live-timeout and the user would have to start it again): the page lets the camera and its
    --max-live place go at once, and starts again when it is shown."""
    from live_socket import a_camera_is_let_in
    from selenium.webdriver.common.by import By

    photo = serve_kit.write_photo(tmp_path / "cam.png", seed=0)
    camera = write_y4m([cv2.imread(str(photo))] * 3, tmp_path / "camera.y4m")
    server = start_server("--max-live", "1")
    driver = browser(camera=camera)
    stats = press_use_my_camera(driver, server)
    wait(driver, lambda d: int(stats.get_attribute("data-frames")) >= 3, message="three live frames answered")
    page = driver.current_window_handle
    driver.switch_to.new_window("tab")  # the page is hidden behind it
    frame = cv2.imencode(".jpg", cv2.imread(str(photo)))[1].tobytes()
    serve_kit.wait_for(lambda: a_camera_is_let_in(server.port, frame), 10,
                       message="the hidden page to give its --max-live place back")
    driver.switch_to.window(page)  # shown again
    wait(driver, lambda d: stats.text.startswith("Live,") and int(stats.get_attribute("data-frames")) >= 2,
         timeout=30, message="the camera to come back on its own")
    assert stats.get_attribute("data-boxes") == "2" and driver.find_element(By.ID, "camera-button").text == "Stop camera"


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
