"""Uploads and results hold faces and are reachable only through the running server: a real serve.py deletes what
its jobs wrote when it stops, the next one deletes what a killed one left once older than --keep-minutes, and the
results kept at once stay under --max-saved-mb. Only what the server made is ever deleted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx2
import pytest

HOUR_S = 3600


def save_photo(server, photo: Path) -> dict:
    """A photo detected with ?save=true: its job id and the links to its files."""
    with open(photo, "rb") as f:
        response = httpx2.post(f"{server.url}/api/detect", params={"save": "true"}, files={"file": ("door.png", f)}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def made_older(folder: Path, seconds: float) -> None:
    """As if the job folder and its files had been written `seconds` ago."""
    then = time.time() - seconds
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (then, then))


def summary(server) -> str:
    return server.process.stdout.rsplit("\n\n", 1)[-1]


# --- when the server stops -------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_deletes_the_uploads_and_results_and_the_run_folder_and_says_so(start_server, photo, tmp_path, stop):
    server = start_server()
    run = tmp_path / "runs" / "exp"
    saved = [save_photo(server, photo)["job"] for _ in range(2)]
    assert all((run / job / "predictions.csv").is_file() for job in saved)
    server.process.signal(stop)
    assert server.process.wait(30) == 0
    assert not run.exists()
    assert f"deleted the uploads and results of 2 jobs (reachable only while the server ran) and the run folder {run}" \
        in summary(server), server.process.stdout
    assert "Traceback" not in server.process.stderr


def test_a_video_cut_short_by_ctrl_c_leaves_neither_its_upload_nor_its_partial_results(start_server, tmp_path, serve_kit):
    server = start_server()
    long_video = serve_kit.write_video(tmp_path / "long.mp4", frames=900)
    job = httpx2.post(f"{server.url}/api/videos", files={"file": ("long.mp4", long_video.read_bytes())}, timeout=60).json()
    serve_kit.wait_for(lambda: httpx2.get(f"{server.url}/api/videos/{job['id']}", timeout=30).json()["frames"] > 0, 60,
                       message="the video job to be under way")
    server.process.signal(signal.SIGINT)
    assert server.process.wait(60) == 0
    assert not (tmp_path / "runs" / "exp").exists()
    assert "deleted the uploads and results of 1 job" in summary(server)


def test_stopping_keeps_files_the_server_did_not_make_and_says_where(start_server, photo, tmp_path):
    server = start_server()
    run = tmp_path / "runs" / "exp"
    save_photo(server, photo)
    (run / "notes.txt").write_text("mine\n")
    server.process.signal(signal.SIGINT)
    assert server.process.wait(30) == 0
    assert [path.name for path in run.iterdir()] == ["notes.txt"] and (run / "notes.txt").read_text() == "mine\n"
    assert f"deleted the uploads and results of 1 job (reachable only while the server ran); {run} was kept: it holds " \
           "files the server did not make" in summary(server)


# --- what a killed server left ---------------------------------------------------------------------


def test_a_new_server_deletes_what_a_killed_one_left_once_older_than_keep_minutes_and_nothing_else(start_server, photo,
                                                                                                   tmp_path):
    runs = tmp_path / "runs"
    killed = start_server("--keep-minutes", "60")
    old, recent = save_photo(killed, photo)["job"], save_photo(killed, photo)["job"]
    killed.process.signal(signal.SIGKILL)
    killed.process.wait(30)
    running = start_server("--keep-minutes", "60")  # exp2: still running, its results are its own to expire
    its_own = save_photo(running, photo)
    made_older(runs / "exp" / old, 2 * HOUR_S)
    made_older(runs / "exp2" / its_own["job"], 2 * HOUR_S)
    not_a_server_run = runs / "mine" / ("0" * 32)  # named like a job, in a folder without the marker
    not_a_server_run.mkdir(parents=True)
    (not_a_server_run / "predictions.csv").write_text("mine\n")
    made_older(not_a_server_run, 2 * HOUR_S)
    not_a_job = runs / "exp" / "notes"
    not_a_job.mkdir()
    made_older(not_a_job, 2 * HOUR_S)

    started = start_server("--keep-minutes", "60")
    assert not (runs / "exp" / old).exists()
    assert (runs / "exp" / recent / "predictions.csv").is_file()  # younger than --keep-minutes
    assert httpx2.get(running.url + its_own["files"]["predictions.csv"], timeout=30).status_code == 200
    assert (not_a_server_run / "predictions.csv").read_text() == "mine\n" and not_a_job.is_dir()
    assert f"deleted 1 job folder(s) older than --keep-minutes (60) and 0 emptied run folder(s) that earlier servers left " \
           f"in {runs}" in started.process.stdout


def test_the_run_folder_of_a_killed_server_goes_once_its_last_job_folder_has(start_server, photo, tmp_path):
    from maskdet.serving.jobs import MARKER

    killed = start_server("--keep-minutes", "1")
    job = save_photo(killed, photo)["job"]
    killed.process.signal(signal.SIGKILL)
    killed.process.wait(30)
    run = tmp_path / "runs" / "exp"
    assert (run / MARKER).is_file()
    made_older(run / job, 61)
    started = start_server("--keep-minutes", "1", "--name", "next")
    assert not run.exists()
    assert "deleted 1 job folder(s) older than --keep-minutes (1) and 1 emptied run folder(s)" in started.process.stdout


# --- --max-saved-mb ----------------------------------------------------------------------------------


def test_past_max_saved_mb_the_oldest_results_go_early_and_the_newest_are_kept(start_server, photo):
    server = start_server("--max-saved-mb", "0.001")  # 1 KiB: less than one photo's results
    first, second = save_photo(server, photo), save_photo(server, photo)
    gone = httpx2.get(server.url + first["files"]["predictions.csv"], timeout=30)
    assert gone.status_code == 404 and "expired" in gone.json()["error"]
    for link in second["files"].values():  # what was just made can always be fetched
        assert httpx2.get(server.url + link, timeout=30).status_code == 200


def test_the_results_kept_stay_under_max_saved_mb_oldest_first(tmp_path, photo):
    from maskdet.serving.jobs import JobStore

    store = JobStore(tmp_path / "run", keep_s=HOUR_S, max_saved_bytes=2500)
    jobs = []
    for i in range(4):
        job = store.create("photo", f"{i}.png")
        (job.folder / "predictions.csv").write_bytes(bytes(1000))
        job.status = "done"
        assert store.kept(job) == (1 if i >= 2 else 0)  # a third 1000-byte result passes 2500: the oldest goes
        jobs.append(job)
    assert [store.get(job.id) is not None for job in jobs] == [False, False, True, True]
    assert store.saved_bytes() == 2000 and not jobs[0].folder.exists() and jobs[3].folder.exists()
    store.clear()
