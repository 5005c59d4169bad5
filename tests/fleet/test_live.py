"""Four live cameras at two sites on two Ray workers, in a private network, into the default store (SQLite) that
the fleet page reads as it is written: people counted per camera and per site, one alert per unmasked person, a
camera that dies shows as down while the others go on, and a worker killed with SIGKILL comes back with its
cameras. (The driver is the store's one writer, so the run does not depend on the backend: the store's own
specifications run on both, and PostgreSQL, with the page reading it, runs in test_counts_only.py.)"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

LEAD, GAP_END, END = 6.0, 38.0, 51.0
# Worker i % 2 serves camera i: north-door and south-door share worker 1, north-hall and south-yard worker 2.
CAMERAS = [  # name, site, zone, group A, group B: (face, seconds after the group starts, seconds in view)
    ("north-door", "north", "door", [("with_mask0", 0, 9), ("without_mask0", 1, 9)], [("without_mask1", 0, 9)]),
    ("north-hall", "north", "hall", [("without_mask0", 0, 9)], [("with_mask0", 0, 9), ("with_mask1", 1, 9)]),
    ("south-door", "south", "door", [("with_mask1", 0, 9)], [("without_mask0", 0, 9), ("with_mask0", 1, 9)]),
    ("south-yard", "south", "yard", [("without_mask1", 0, 9), ("with_mask0", 1, 9)], [("without_mask0", 0, 9)]),
]
KILLED_CAMERA = "south-yard"  # its stream is stopped in the gap: group B never reaches the fleet
KILLED_WORKER_CAMERAS = ("north-door", "south-door")
PLACES = [((70, 80), (110, 95)), ((240, 165), (205, 150))]  # two slow walks that never overlap


def visits(kit, groups):
    out = []
    for start, group in zip((LEAD, GAP_END), groups):
        for place, (face, after, seconds) in zip(PLACES, group):
            out.append(kit.Visit(face, start + after, start + after + seconds, *place))
    return out


def truth(name: str) -> list[str]:
    """The verdicts of the people the fleet can see on this camera."""
    _, _, _, a, b = next(c for c in CAMERAS if c[0] == name)
    seen = a if name == KILLED_CAMERA else a + b
    return [face.rstrip("0123456789") for face, _, _ in seen]


def cameras_file(tmp_path, cameras) -> str:
    lines = ["defaults:", "  fps: 2", "  min_frames: 3", "  alert: [without_mask]", "  alert_after: 1", "  down_after: 6",
             "cameras:"]
    for (name, site, zone, _, _), camera in zip(CAMERAS, cameras):
        lines += [f"  - name: {name}", f"    source: {camera.url}", f"    site: {site}", f"    zone: {zone}"]
    path = tmp_path / "cameras.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_four_cameras_two_sites_two_workers(store_url, netns, udp_cameras, faces, fleet_kit, detect_kit, tmp_path, request):
    kit = fleet_kit
    videos = [kit.write_camera_video(tmp_path / f"{c[0]}.mp4", faces, visits(kit, c[3:]), END, kit.background) for c in CAMERAS]
    cameras = udp_cameras(videos)
    monitor = kit.Background(netns.argv([sys.executable, kit.root / "monitor.py", cameras_file(tmp_path, cameras),
                                         "--workers", "2", "--db", store_url.url]), tmp_path / "logs", "monitor")
    request.addfinalizer(monitor.stop)

    def rows(sql, params=()):
        return kit.query(store_url.read_url, sql, params)

    def states() -> dict[str, tuple[str, str]]:
        try:
            return {name: (state, worker) for name, state, worker in rows("SELECT name, state, worker FROM cameras")}
        except Exception:  # not created yet
            return {}

    def people(name: str) -> int:
        return rows("SELECT COUNT(*) FROM people WHERE camera = ?", (name,))[0][0]

    kit.wait_for(lambda: store_url.kind != "sqlite" or os.path.exists(store_url.url), 120, message="the store")
    page = kit.FleetPage(store_url.read_url, kit, detect_kit, tmp_path)  # it reads the store as monitor.py writes it
    request.addfinalizer(page.close)

    # The workers are up and listening on every camera: the streams start now, together.
    kit.wait_for(lambda: len(states()) == 4 and all(s in ("connecting", "down") for s, _ in states().values())
                 or not monitor.running(), 180, interval=0.3, message="every camera to be opened by a worker")
    assert monitor.running(), monitor.stderr[-3000:]
    for camera in cameras:
        camera.start()
    kit.wait_for(lambda: all(s == "live" for s, _ in states().values()), 30, message="every camera live")

    # Group A has come and gone on the first worker's cameras: kill that worker (SIGKILL) in the quiet gap,
    # and stop the south-yard camera for good.
    kit.wait_for(lambda: people("north-door") >= 2 and people("south-door") >= 1, 40, message="group A to be counted")
    old_worker = states()["north-door"][1]
    assert old_worker == states()["south-door"][1] != states()["north-hall"][1]
    os.kill(int(old_worker.rsplit(":", 1)[1]), signal.SIGKILL)
    killed_at = time.monotonic()
    cameras[[c[0] for c in CAMERAS].index(KILLED_CAMERA)].stop()

    # Ray restarts the worker and its cameras resume within 15 s.
    kit.wait_for(lambda: all(states()[n][1] != old_worker and states()[n][0] == "live" for n in KILLED_WORKER_CAMERAS),
                 20, interval=0.2, message="the killed worker's cameras to resume")
    assert time.monotonic() - killed_at <= 15

    # The dead camera is shown as down, the others go on.
    kit.wait_for(lambda: states()[KILLED_CAMERA][0] == "down", 30, message=f"{KILLED_CAMERA} to be down")
    live = {n: s for n, (s, _) in states().items()}
    assert live == {"north-door": "live", "north-hall": "live", "south-door": "live", KILLED_CAMERA: "down"}, live
    check_one_down(page)

    # The streams end; once everyone has left the view, Ctrl-C.
    kit.wait_for(lambda: all(c.process.proc.poll() is not None for c in cameras), 60, message="the streams to end")
    kit.wait_for(lambda: all(s != "live" for s, _ in states().values()), 30, message="every camera to stop sending")
    monitor.signal(signal.SIGINT)
    assert monitor.wait(timeout=90) == 0, monitor.stderr[-3000:]
    assert "Traceback" not in monitor.stderr and "Traceback" not in monitor.stdout, monitor.stderr[-3000:]
    assert "worker restarts: 1" in monitor.stdout, monitor.stdout[-2000:]

    # People per camera and per site within one of the truth; alerts exactly once per unmasked person.
    for name, *_ in CAMERAS:
        counted = people(name)
        assert abs(counted - len(truth(name))) <= 1, (name, counted, truth(name), monitor.stdout[-3000:])
        alerts = rows("SELECT COUNT(*) FROM alerts WHERE camera = ?", (name,))[0][0]
        assert alerts == truth(name).count("without_mask"), (name, alerts, truth(name), monitor.stdout[-3000:])
    for site in ("north", "south"):
        counted = rows("SELECT COUNT(*) FROM people WHERE site = ?", (site,))[0][0]
        expected = sum(len(truth(c[0])) for c in CAMERAS if c[1] == site)
        assert abs(counted - expected) <= 1, (site, counted, expected)
    # Alerts carry camera, site and zone; every alert is a person counted as unmasked.
    for camera, site, zone, track, verdict in rows("SELECT camera, site, zone, track, verdict FROM alerts"):
        assert (site, zone) == next((c[1], c[2]) for c in CAMERAS if c[0] == camera)
        assert verdict == "without_mask"
        assert rows("SELECT verdict FROM people WHERE camera = ? AND track = ?", (camera, track)) == [("without_mask",)]
    # The per-minute counts add up to the people; Ctrl-C left every camera stopped.
    assert rows("SELECT SUM(with_mask + without_mask + mask_weared_incorrect) FROM counts")[0][0] == \
        rows("SELECT COUNT(*) FROM people")[0][0]
    assert {s for s, _ in states().values()} == {"stopped"}


def check_one_down(page) -> None:
    """The dead camera down (since when), the others live, totals per site, alerts; refreshed by itself."""
    from selenium.webdriver.support.ui import WebDriverWait

    wanted = {"north-door": "live", "north-hall": "live", "south-door": "live", KILLED_CAMERA: "down"}
    WebDriverWait(page.driver, 10, 0.3).until(lambda d: page.snapshot()["states"] == wanted)  # refreshes by itself
    shown = page.snapshot()
    since = shown["since"][KILLED_CAMERA].strip()
    assert since.endswith("UTC") and since[:4].isdigit(), since
    assert shown["sites"] == ["north", "south"]
    assert shown["alerts"], "the alerts of group A"
    path = page.tmp_path / "artefacts" / "fleet.png"
    path.parent.mkdir(exist_ok=True)
    page.driver.save_screenshot(str(path))

