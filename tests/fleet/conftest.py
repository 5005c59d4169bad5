"""Fixtures for the fleet specifications: a private network, live cameras with known people, real stores.

* `netns`: a private network namespace (`unshare -n`, loopback up) that Ray, the camera streams, PostgreSQL
  and monitor.py all run in, so Ray binds 127.0.0.1 and nothing reaches beyond the machine.
* `faces`: Kaggle faces the shipped model recognises on a still (as tests/monitoring/conftest.py picks
  them); `camera_video` moves them slowly over a plain background on a timeline the test knows.
* `udp_camera`: ffmpeg sending a video in real time as MPEG-TS over UDP to 127.0.0.1 (a live camera that a
  restarted worker can join again mid-stream, and that the test can kill).
* `postgres`: Debian's PostgreSQL, initdb and pg_ctl as the postgres user, on a local port in the namespace.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SIZE = (320, 240)
FPS = 10
FACE_PX = 64


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def detect_kit():
    """tests/inference/conftest.py as a module: Background processes, wait_for, free ports."""
    return _load("fleet_detect_fixtures", ROOT / "tests" / "inference" / "conftest.py")


@pytest.fixture(scope="session")
def monitoring_kit():
    """tests/monitoring/conftest.py as a module: Kaggle faces the model recognises, the background."""
    return _load("fleet_monitoring_fixtures", ROOT / "tests" / "monitoring" / "conftest.py")


# --- the private network ------------------------------------------------------------------------


class NetNS:
    """A network namespace held open by a sleeping process; argv() runs a command inside it."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && echo ready && exec sleep 100000"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.wait(timeout=10)
            raise RuntimeError(self.holder.stderr.read().strip() or "unshare -n failed")

    def argv(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--", *map(str, argv)]

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(argv), capture_output=True, text=True, **kwargs)

    def members(self, uid: int | None = None) -> list[int]:
        """Every process in this namespace (all started by the test: a crashed run's Ray included), or those of
        one user (root's: not the PostgreSQL server, which runs as postgres)."""
        mine = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != self.holder.pid:
                try:
                    if os.readlink(f"/proc/{entry}/ns/net") == mine and uid in (None, os.stat(f"/proc/{entry}").st_uid):
                        found.append(int(entry))
                except OSError:
                    pass
        return found

    def stop(self) -> None:
        if self.holder.poll() is None:
            for pid in self.members():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(timeout=10)


@pytest.fixture(scope="module")
def netns():
    for tool in ("unshare", "nsenter", "ip", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (util-linux, iproute2, ffmpeg)")
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private network namespace here (unshare -n: {probe.stderr.strip()[:200]})")
    ns = NetNS()
    yield ns
    ns.stop()


# --- live cameras with known people -------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """A face in view from t0 to t1 seconds, drifting slowly from one centre to another."""

    face: str  # key into faces: 'with_mask0', 'without_mask1', ...
    t0: float
    t1: float
    start: tuple[float, float]
    end: tuple[float, float]

    @property
    def label(self) -> str:
        return self.face.rstrip("0123456789")

    def centre(self, t: float) -> tuple[float, float] | None:
        if not self.t0 <= t <= self.t1:
            return None
        k = (t - self.t0) / (self.t1 - self.t0)
        return (self.start[0] + k * (self.end[0] - self.start[0]), self.start[1] + k * (self.end[1] - self.start[1]))


@pytest.fixture(scope="session")
def faces(monitoring_kit) -> dict[str, np.ndarray]:
    """Two with_mask and two without_mask faces the shipped model finds alone, at the right class, on a still."""
    kit = monitoring_kit
    if not (kit.KAGGLE_DIR / "annotations").is_dir():
        pytest.skip(f"the Kaggle dataset is not at {kit.KAGGLE_DIR}")
    if not kit.MODEL.exists():
        pytest.skip(f"no shipped model at {kit.MODEL}")
    from maskdet.inference.detectors import DetectSettings, load_detector

    detector = load_detector(kit.MODEL, DetectSettings())
    out = {}
    for label in ("with_mask", "without_mask"):
        found = []
        for _, face in kit.kaggle_faces(label):
            if kit.recognised(detector, face, label):
                found.append(face)
            if len(found) == 2:
                break
        if len(found) < 2:
            pytest.skip(f"the model recognises too few {label} faces from the Kaggle photos on a still")
        out.update({f"{label}{i}": face for i, face in enumerate(found)})
    return out


def write_camera_video(path: Path, faces: dict[str, np.ndarray], visits: list[Visit], seconds: float,
                       background) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    assert writer.isOpened()
    blank = background()
    for i in range(int(seconds * FPS)):
        t = i / FPS
        canvas = blank.copy()
        for visit in visits:
            centre = visit.centre(t)
            if centre is not None:
                h, w = FACE_PX, FACE_PX
                x0, y0 = int(round(centre[0] - w / 2)), int(round(centre[1] - h / 2))
                canvas[y0:y0 + h, x0:x0 + w] = faces[visit.face]
        writer.write(canvas)
    writer.release()
    return path


class UdpCamera:
    """ffmpeg sending a video once, in real time, as MPEG-TS over UDP to 127.0.0.1:port inside the namespace."""

    def __init__(self, netns: NetNS, video: Path, port: int, logs: Path, kit):
        self.netns, self.video, self.port, self.logs, self.kit = netns, video, port, logs, kit
        self.url = f"udp://127.0.0.1:{port}"
        self.process = None

    def start(self) -> None:
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", self.video, "-an",
                "-c:v", "mpeg1video", "-r", "25", "-q:v", "2", "-g", "5", "-f", "mpegts", f"{self.url}?pkt_size=1316"]
        self.process = self.kit.Background(self.netns.argv(argv), self.logs, f"camera{self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def udp_cameras(netns, detect_kit, tmp_path):
    """udp_cameras(videos) -> UdpCamera each (not started); all stopped at teardown."""
    made: list[UdpCamera] = []

    def make(videos: list[Path]) -> list[UdpCamera]:
        for video in videos:  # the namespace is the test's own: any port is free there
            made.append(UdpCamera(netns, video, 31000 + len(made), tmp_path / "logs", detect_kit))
        return made[-len(videos):]

    yield make
    for camera in made:
        camera.stop()


# --- PostgreSQL -----------------------------------------------------------------------------------


class Postgres:
    """initdb + pg_ctl as the postgres user on 127.0.0.1:port inside the namespace; trust authentication.

    url: for monitor.py inside the namespace (the port); socket_url: for the test outside it (the Unix
    socket in a folder, which does not depend on the network namespace)."""

    def __init__(self, netns: NetNS, port: int):
        self.netns, self.port = netns, port
        self.folder = Path(tempfile.mkdtemp(prefix="maskdet-pg-"))
        os.chmod(self.folder, 0o755)
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.socket_url = f"postgresql://postgres@/postgres?host={self.folder}&port={port}"

    def as_postgres(self, *argv, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.netns.run(["runuser", "-u", "postgres", "--", *map(str, argv)], timeout=timeout)

    def start(self) -> None:
        init = self.as_postgres(PG_BIN / "initdb", "-D", self.data, "--auth=trust", "-U", "postgres", "--no-sync")
        assert init.returncode == 0, init.stderr[-2000:]
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = self.as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "log", "-o", options, "start")
        assert start.returncode == 0, start.stderr[-2000:] + self._log()
        deadline = time.monotonic() + 60
        while self.as_postgres(PG_BIN / "pg_isready", "-h", "127.0.0.1", "-p", self.port, "-t", "2").returncode != 0:
            assert time.monotonic() < deadline, "PostgreSQL did not get ready: " + self._log()
            time.sleep(0.2)

    def _log(self) -> str:
        log = self.folder / "log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self.data.exists():
            self.as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(netns):
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"needs Debian's PostgreSQL 15 ({PG_BIN}; apt-get install postgresql)")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user (Debian's postgresql package makes it)")
    if os.geteuid() != 0:
        pytest.skip("starting PostgreSQL as the postgres user needs root (runuser)")
    pytest.importorskip("psycopg", reason="needs psycopg (requirements-fleet.txt)")
    server = Postgres(netns, 25432)
    server.start()
    yield server
    server.stop()


class FleetPageBase:
    """serve.py --db and the fleet page in a headless Chromium, opened early (both take a while to start)."""

    def __init__(self, db: str, kit, detect_kit, tmp_path):
        import shutil

        if not (shutil.which("chromium") and shutil.which("chromedriver")):
            pytest.skip("needs Debian's chromium and chromium-driver for the fleet page")
        webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (requirements-dev.txt)")
        self.tmp_path = tmp_path
        port = detect_kit.free_port()
        self.server = kit.Background([sys.executable, kit.root / "serve.py", "--db", db, "--port", str(port),
                                      "--project", tmp_path / "serve"], tmp_path / "logs", "serve")
        kit.wait_for(lambda: detect_kit.is_listening(port) or not self.server.running(), 120, message="serve.py to listen")
        assert self.server.running(), self.server.stderr[-2000:]
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,1200"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(options=options,
                                       service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))
        self.driver.get(f"http://127.0.0.1:{port}/fleet")

    def snapshot(self) -> dict:
        """What the page shows, read in one script: the page re-renders its tables every few seconds, so
        element handles kept between calls would go stale mid-read."""
        return self.driver.execute_script("""
            const rows = sel => [...document.querySelectorAll(sel)];
            return {
              states: Object.fromEntries(rows('#cameras tbody tr').map(r =>
                  [r.dataset.camera, (r.querySelector('.state') || {}).innerText || ''])),
              since: Object.fromEntries(rows('#cameras tbody tr').map(r =>
                  [r.dataset.camera, (r.querySelector('td:nth-child(5)') || {}).innerText || ''])),
              sites: rows('#sites tbody tr').map(r => r.dataset.site),
              alerts: rows('#alerts tbody tr').length,
              periods: document.getElementById('periods-section').hidden ? null : rows('#periods tbody tr').map(r =>
                  [r.dataset.camera, ...[...r.querySelectorAll('td')].map(td => td.innerText)]),
            };""")

    def close(self) -> None:
        self.driver.quit()
        self.server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The store, each way: (url for monitor.py, url for the test to read)."""
    if request.param == "sqlite":
        path = tmp_path / "fleet.db"
        return SimpleNamespace(kind="sqlite", url=str(path), read_url=str(path))
    pg = request.getfixturevalue("postgres")
    from maskdet.fleet.store import SCHEMA, Store

    store = Store.open(pg.socket_url)  # a clean store for each test: every table the schema makes
    with store.transaction():
        for statement in SCHEMA:
            if statement.startswith("CREATE TABLE"):
                store.execute(f"DELETE FROM {statement.split()[5]}")
    store.close()
    return SimpleNamespace(kind="postgresql", url=pg.url, read_url=pg.socket_url)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    from maskdet.fleet.store import Store

    store = Store.open(url, create=False) if not url.startswith("postgresql") else Store.open(url)
    try:
        return store.execute(sql, params)
    finally:
        store.close()


@pytest.fixture(scope="session")
def fleet_kit(detect_kit, monitoring_kit):
    return SimpleNamespace(Visit=Visit, write_camera_video=write_camera_video, background=monitoring_kit.background,
                           wait_for=detect_kit.wait_for, Background=detect_kit.Background, query=query,
                           free_port=detect_kit.free_port, root=ROOT, FleetPage=FleetPageBase)
