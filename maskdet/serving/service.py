"""What the server does, apart from HTTP: detect on a photo, run a video job, answer a live frame.

Detection and drawing are the per-frame step detect.py runs (maskdet.pipeline.Pipeline, one per pool
worker, from ServeSettings.pipeline_settings()) and the records are its sinks, so a photo through the API
gives the same boxes, picture, CSV and JSON as `python detect.py`.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from maskdet.inference.detections import Detections, Frame
from maskdet.inference.sinks import CsvSink, JsonSink, MediaSink, Sink, records
from maskdet.inference.sources import SourceError, iter_video
from maskdet.pipeline.step import Pipeline
from maskdet.privacy.blur import enlarged
from maskdet.serving.jobs import Job, JobStore
from maskdet.serving.pool import ModelPool
from maskdet.serving.video import BrowserVideoSink, PeopleSink, bounded_frames
from maskdet.settings import PrivacySettings, ServeSettings  # noqa: F401  (imported from here by the app and tests)

CSV_NAME, JSON_NAME, VIDEO_NAME, PEOPLE_NAME = "predictions.csv", "predictions.json", "annotated.mp4", "people.json"


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def result(frame: Frame, det: Detections) -> dict:
    """The JSON of one detected image: detect.py's records plus counts per class."""
    h, w = frame.image.shape[:2]
    return {"source": frame.source, "width": w, "height": h, "counts": dict(det.counts()),
            "detections": records(frame, det), "inference_ms": round(sum(det.timings_ms.values()), 1)}


class Service:
    def __init__(self, settings: ServeSettings):
        self.settings = settings
        step_settings = settings.pipeline_settings()
        # Each worker is a Pipeline with its own model copy; no tracking, so they hold no per-stream state.
        self.pool = ModelPool(lambda: Pipeline(step_settings), settings.workers, settings.backlog)
        # The run folder is filled only once the model is loaded (above): a model that fails leaves it empty.
        self.store = JobStore(settings.results_dir, settings.keep_minutes * 60, settings.max_saved_bytes)
        self.videos = ThreadPoolExecutor(max_workers=max(1, settings.max_video_jobs), thread_name_prefix="video-job")
        self.stopping = threading.Event()
        self.close_lock = threading.Lock()
        self.cleaned: tuple[int, bool] | None = None  # (job folders deleted, run folder removed) once closed
        self.served: Counter = Counter()  # photos, video frames, camera frames: for the summary

    def summary_lines(self) -> list[str]:
        served = ", ".join(f"{n} {what}" for what, n in self.served.items()) or "nothing"
        folder = self.settings.results_dir
        if self.cleaned is None:  # still running
            return [f"served {served}", f"results are in {folder} while the server runs"]
        deleted, removed = self.cleaned
        kept = f"{folder} was kept: it holds files the server did not make"
        if deleted:
            what = f"deleted the uploads and results of {plural(deleted, 'job', 'jobs')} (reachable only while the server ran)"
            return [f"served {served}", f"{what} and the run folder {folder}" if removed else f"{what}; {kept}"]
        return [f"served {served}", f"nothing was left to delete; {f'removed the empty run folder {folder}' if removed else kept}"]

    def blurs(self, privacy: str | None) -> bool:
        """A request may ask for blur; with serve.py --privacy blur, every request gets it."""
        return self.settings.privacy == "blur" or privacy == "blur"

    def detect(self, frame: Frame, blur: bool = False) -> tuple[Detections, np.ndarray]:
        """Boxes and the annotated picture, on the next free pipeline (the caller holds a pool ticket).
        With `blur`, the pipeline's privacy stage blurs the faces in the frame itself before anything draws it."""
        with self.pool.detector() as pipeline:
            det = pipeline.process(frame)
        if blur:
            det = pipeline.privacy.blur(frame, det)
        return det, pipeline.annotate(frame, det)  # drawing needs no model (nor stream state): out of the pool

    def detect_photo(self, image: np.ndarray, source: str, save: bool, blur: bool = False) -> tuple[dict, np.ndarray]:
        """Detect on one photo; with `save`, its annotated image, CSV and JSON go to a new job folder."""
        frame = Frame(image, source, "annotated", "image", captured_at=time.perf_counter())
        det, annotated = self.detect(frame, blur)
        out = result(frame, det)
        self.served["photos"] += 1
        if save:
            job = self.store.create("photo", source)
            with MediaSink(job.folder) as media, CsvSink(job.folder / CSV_NAME) as csv_sink, \
                    JsonSink(job.folder / JSON_NAME) as json_sink:
                write_all([media, csv_sink, json_sink], frame, det, annotated)
            self.finish(job, [*media.saved, job.folder / CSV_NAME, job.folder / JSON_NAME], det.counts())
            out["job"] = job.id
        return out, annotated

    def finish(self, job: Job, files: list[Path], counts: Counter) -> None:
        job.files = {path.name: path for path in files}
        job.counts = dict(counts)
        job.status = "done"
        self.store.kept(job)  # past --max-saved-mb, the oldest results go early

    def start_video(self, job: Job, path: Path, fps: float, blur: bool = False) -> None:
        self.videos.submit(self.run_video, job, path, fps, blur)

    def run_video(self, job: Job, path: Path, fps: float, blur: bool = False) -> None:
        """Every frame through the pool (taking turns with photos), into an H.264 MP4 and the records."""
        job.status = "running"

        def ended_early(message: str) -> None:  # a truncated file: what was read is the result, and the job says so
            job.warning = f"stopped early: {message.replace(str(path), job.source)}"

        try:
            with CsvSink(job.folder / CSV_NAME) as csv_sink, JsonSink(job.folder / JSON_NAME) as json_sink, \
                    BrowserVideoSink(job.folder / VIDEO_NAME, fps) as video, \
                    PeopleSink(job.folder / PEOPLE_NAME, self.pool.names) as people:
                frames = iter_video(path, 1, lambda _msg: None, ended_early=ended_early, max_pixels=self.settings.max_video_pixels)
                for frame in bounded_frames(frames, self.settings.max_video_frames):
                    if self.stopping.is_set():
                        raise SourceError("the server stopped before the video was done")
                    frame.source = job.source  # records name the upload, not the server's file
                    det, annotated = self.detect(frame, blur)
                    write_all([video, csv_sink, json_sink, people], frame, det, annotated)
                    job.frames += 1
                    self.served["video frames"] += 1
                    job.counts = people.counts()  # people, not boxes summed over frames
            self.finish(job, [job.folder / VIDEO_NAME, job.folder / CSV_NAME, job.folder / JSON_NAME, job.folder / PEOPLE_NAME],
                        Counter(people.counts()))
        except Exception as exc:  # a job that fails says why in its status; the server goes on
            job.error = str(exc).replace(str(path), job.source)
            job.status = "failed"
            if not self.stopping.is_set():  # (stopping: close() deletes every job's folder, and counts it)
                shutil.rmtree(job.folder, ignore_errors=True)  # its partial video and records are never served: not kept
        finally:
            path.unlink(missing_ok=True)  # the upload is not needed once processed

    def live(self, image: np.ndarray, index: int, blur: bool = False) -> dict:
        """With `blur`, the answer names the regions the page must blur before it shows the frame."""
        frame = Frame(image, "camera", "camera", "live", index, captured_at=time.perf_counter())
        det, _ = self.detect(frame)
        self.served["camera frames"] += 1
        out = result(frame, det)
        if blur:
            h, w = image.shape[:2]
            out["blur"] = enlarged(det.xyxy, PrivacySettings().blur_margin, w, h).tolist()
        return out

    def close(self) -> None:
        """Stop the video jobs, then delete what every job wrote (and the run folder when nothing else is in it):
        results are reachable only through the running server. Safe to call again."""
        with self.close_lock:
            self.stopping.set()
            self.videos.shutdown(wait=True, cancel_futures=True)
            if self.cleaned is None:
                self.cleaned = self.store.clear()


def write_all(sinks: list[Sink], frame: Frame, det: Detections, annotated: np.ndarray) -> None:
    for sink in sinks:
        sink.write(frame, det, annotated)
