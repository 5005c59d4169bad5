"""One monitor.py run writes a store at a time: a second run into it is refused at start (both would count every
person), readers (the fleet page) are never held up, and a run killed with kill -9 leaves the store free."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from maskdet.errors import UserError
from maskdet.fleet.store import Store

HOLD = "import sys, time; from maskdet.fleet.store import Store; store = Store.open(sys.argv[1], writer=True); print('held', flush=True); time.sleep(600)"


def test_a_second_run_into_a_store_being_written_is_refused_and_the_first_goes_on(store_url, netns, fleet_kit, tmp_path):
    kit = fleet_kit
    folder = tmp_path / "recordings"
    folder.mkdir()
    kit.write_camera_video(folder / "gate.mp4", {}, [], 120.0, kit.background)  # long enough to still be running
    argv = netns.argv([sys.executable, kit.root / "monitor.py", "--archive", folder, "--workers", "1", "--db", store_url.url])
    first = kit.Background(argv, tmp_path / "logs", "first")
    try:
        def started() -> bool:
            try:
                return bool(kit.query(store_url.read_url, "SELECT name FROM cameras"))
            except Exception:  # the store is not made yet
                return False

        kit.wait_for(lambda: started() or not first.running(), 300, message="the first run to start its video")
        assert first.running(), first.stderr[-3000:]

        second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr[-3000:]
        assert second.stderr.strip().splitlines() == [f"error: {store_url.url}: another monitor.py run is writing this store: "
                                                      "wait for it to end, or give another --db"]
        assert second.stdout == ""
        reader = Store.open(store_url.read_url, create=False)  # the fleet page reads on while the first run writes
        assert [c["name"] for c in reader.summary()["cameras"]] == ["recordings/gate.mp4"]
        reader.close()
        assert first.running(), first.stderr[-3000:]  # the first run is not disturbed
    finally:
        first.signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130, first.stderr[-3000:]
    Store.open(store_url.read_url, writer=True).close()  # the run that ended let the store go


def test_a_run_killed_with_kill_9_does_not_leave_the_store_locked(store_url):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, store_url.read_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match="another monitor.py run is writing this store"):
            Store.open(store_url.read_url, writer=True)
        reader = Store.open(store_url.read_url, create=False)  # readers take no lock
        assert reader.summary()["cameras"] == []
        reader.close()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    Store.open(store_url.read_url, writer=True).close()
