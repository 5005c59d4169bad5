"""The driver: camera workers as Ray actors, results into the store, alerts to the webhook.

Ray does the distribution: it places the workers (one CPU each) on the machines of the cluster, restarts
a worker that dies (max_restarts) and carries calls and results. The driver only paces each camera at its
sampling rate (one call in flight per camera, so a slow worker drops frames instead of queueing them)
and is the store's one writer: a batch of results per transaction, about once a second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from maskdet.errors import UserError, one_line
from maskdet.fleet.cameras import Camera, Fleet, file_stat, video_fingerprint
from maskdet.fleet.store import ALERT_ID_PREFIX, Batch, DoneVideo, Store, utc_text
from maskdet.fleet.worker import CameraWorker
from maskdet.monitoring.webhook import WebhookSender

MAX_RESTARTS = 20  # a worker killed this many times stays down (a model that crashes it every time)
FLUSH_S = 1.0
STOP_S = 20.0  # Ctrl-C: how long the workers get to hand back the people still in view
RAY_CONNECT_S = 5.0  # --ray: how long the head's port has to answer before the run is refused
MAX_HELD_BYTES = 1 << 20  # of what Ray writes to stderr while joining: written out after, or read for the reason
Log = Callable[[str], None]


@dataclass
class Totals:
    frames: Counter = field(default_factory=Counter)
    people: int = 0
    alerts: int = 0
    restarts: int = 0
    videos: int = 0  # archive: done this run
    already_done: int = 0  # archive: done by an earlier run (skipped at the start)
    copies: int = 0  # archive: the same video as another in this folder (counted once)
    skipped: list[str] = field(default_factory=list)  # videos that could not be read; live cameras that sent nothing
    interrupted: bool = False


# --ray: how long ray.init may try to join. Left alone, it tries the GCS 20 times, each up to 40 s, for an address
# whose port answers but is no Ray head; with these, once, in about 15 s. (Only when joining: a local Ray's own head
# may need longer to come up.)
RAY_JOIN_ENV = {"RAY_gcs_server_port_wait_time_s": "1", "RAY_py_gcs_connect_timeout_s": "5"}


# What Ray's core writes when the head refuses a driver's token (ray.init itself only says it failed to connect),
# and what ray.init raises when the driver is in token mode without a token.
TOKEN_REFUSED = ("InvalidAuthToken", "Unauthenticated")
NO_TOKEN = "no authentication token was found"
TOKEN_WHERE = "the head's token (`ray get-auth-token` on the head prints it) in RAY_AUTH_TOKEN or in ~/.ray/auth_token"


def token_refused(shown: str) -> str:
    """The one line for a cluster with token authentication (RAY_AUTH_MODE=token on its machines, or a token file
    in the head's ~/.ray): the driver needs the mode and the head's token too, and ray.init says only "Failed to
    connect"."""
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token":
        return f"the Ray cluster at {shown} refused this machine's authentication token: give it {TOKEN_WHERE}"
    return f"the Ray cluster at {shown} uses token authentication: run monitor.py with RAY_AUTH_MODE=token and {TOKEN_WHERE}"


def make_ray_token_private(log: Log) -> None:
    """A local Ray (2.59 and later) writes its token, the key to run code on the cluster, to ~/.ray/auth_token
    readable by every user of the machine (umask 022); a `ray start --head` here later takes that file as the
    cluster's token. Made readable by its owner alone."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            path.chmod(0o600)
            log(f"note: Ray's token file {path} was readable by other users: now by you alone (chmod 600)")
    except OSError:
        pass


def ray_address_text(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_ray_head(address: tuple[str, int]) -> None:
    """--ray: the head's port must answer within RAY_CONNECT_S, checked before anything starts (ray.init would wait
    minutes for an address where nothing listens)."""
    try:
        socket.create_connection(address, timeout=RAY_CONNECT_S).close()
    except OSError as exc:
        why = ("no such host" if isinstance(exc, socket.gaierror) else
               f"no answer within {RAY_CONNECT_S:g} s" if isinstance(exc, TimeoutError) else exc.strerror or str(exc))
        raise UserError(f"no Ray cluster answers at {ray_address_text(address)} ({why}): start one there with "
                        "`ray start --head`, or leave --ray out for a local Ray", "--ray") from None


def start_ray(address: tuple[str, int] | None, workers: int, log: Log) -> bool:
    """Join the cluster whose head is at (host, port) (see check_ray_head), or start a local Ray for this run.
    True when we started it."""
    if address:
        for name, value in RAY_JOIN_ENV.items():
            os.environ.setdefault(name, value)
        import ray

        shown = ray_address_text(address)
        failed: list[Exception] = []
        held: list[str] = []
        with _stderr_kept_unless(failed, held):
            try:
                ray.init(address=shown, logging_level="ERROR", log_to_driver=False)
            except Exception as exc:  # Ray's own ConnectionError, RuntimeError...: one line, not its traceback
                failed.append(exc)
        if failed and (type(failed[0]).__name__ == "AuthenticationError" or NO_TOKEN in str(failed[0])):
            raise UserError(f"RAY_AUTH_MODE=token is set, but this machine has no Ray token: give it {TOKEN_WHERE}",
                            "--ray") from None
        if failed and any(mark in "".join(held) for mark in TOKEN_REFUSED):
            raise UserError(token_refused(shown), "--ray") from None
        if failed:
            raise UserError(f"cannot join the Ray cluster at {shown}: {one_line(failed[0], 300)}", "--ray") from None
        return False
    import ray

    # Ray starts its workers at niceness 15 (the raylet first); here the workers ARE the job, and a camera worker
    # that any other program on the machine can starve drops frames. A cluster started with `ray start` keeps its own.
    os.environ.setdefault("RAY_worker_niceness", "0")
    # address="local": a Ray of this run's own. Without it ray.init joins the cluster a `ray start` left on this
    # machine (its ray_current_cluster file, even a stale one) and refuses num_cpus there: --ray is for joining.
    ray.init(address="local", num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False,
             logging_level="ERROR", log_to_driver=False, configure_logging=True)
    make_ray_token_private(log)
    return True


@contextlib.contextmanager
def _stderr_kept_unless(failed: list, held_text: list[str]):
    """Ray's C++ core writes its retries to the process's stderr (fd 2) as it tries to join: held back here, and
    written out after all unless `failed` has something in it by the end (then the one-line error says it all,
    and what was held goes to `held_text` for it to read)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read(MAX_HELD_BYTES).decode("utf-8", "replace")
            if failed:
                held_text.append(text)
            elif text:
                sys.stderr.write(text)
                sys.stderr.flush()


def make_workers(fleet: Fleet, count: int) -> list:
    import ray

    actor = ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=0)(CameraWorker)
    workers = [actor.remote(fleet.defaults) for _ in range(count)]
    ray.get([w.pid.remote() for w in workers])  # every model loaded before the first camera is sampled
    return workers


def webhook_record(alert: dict) -> dict:
    """What the webhook is sent: the alert as stored, except that with privacy counts its key is an alert id,
    posted as "alert" (there is no track to name)."""
    record = {k: v for k, v in alert.items() if k != "delivery"}
    if record["track"].startswith(ALERT_ID_PREFIX):
        record["alert"] = record.pop("track")
    return record


def alert_line(alert: dict) -> str:
    who = "" if alert["track"].startswith(ALERT_ID_PREFIX) else f" #{alert['track']}"
    return f"ALERT {alert['camera']} ({alert['site']}/{alert['zone']}): {alert['verdict']}{who}"


class Alerts:
    """Alerts to the webhook from a background queue; delivery statuses come back to the driver, which
    alone writes the store."""

    def __init__(self, url: str | None):
        self.lock = threading.Lock()
        self.statuses: list[tuple[str, str, str]] = []
        self.sender = WebhookSender(url, self._on_status) if url else None

    def _on_status(self, record: dict, status: str) -> None:
        with self.lock:
            self.statuses.append((record["camera"], record.get("track") or record["alert"], status))

    def submit(self, alert: dict) -> None:
        alert["delivery"] = "queued" if self.sender else "not sent (no webhook)"
        if self.sender:
            self.sender.submit(webhook_record(alert))

    def take_statuses(self) -> list[tuple[str, str, str]]:
        with self.lock:
            out, self.statuses = self.statuses, []
        return out

    def close(self) -> None:
        if self.sender:
            self.sender.close()


class Writer:
    """Collects results and writes them to the store in batches."""

    def __init__(self, store: Store, alerts: Alerts, totals: Totals, log: Log, retain_s: float | None = None):
        self.store, self.alerts, self.totals, self.log = store, alerts, totals, log
        self.batch = Batch([], [], {}, {})
        self.states: dict[str, str] = {}
        self.last_flush = time.monotonic()
        self.retain_s = retain_s
        self.last_prune = float("-inf")

    def prune(self, force: bool = False) -> None:
        """--retain: rows older than the retention go, at start and then every quarter of it (5 min at most)."""
        if not self.retain_s or (not force and time.monotonic() - self.last_prune < min(self.retain_s / 4, 300)):
            return
        self.last_prune = time.monotonic()
        deleted = self.store.prune(self.retain_s)
        if any(deleted.values()):
            self.log("retention: deleted " + ", ".join(f"{n} {table} rows" for table, n in deleted.items() if n))

    def add(self, result: dict) -> None:
        name = result["camera"]
        for note in result.get("notes", []):
            self.log(note)
        self.batch.people += result["people"]
        for alert in result["alerts"]:
            self.alerts.submit(alert)
            self.log(alert_line(alert))
        self.batch.alerts += result["alerts"]
        self.batch.periods += result.get("periods", [])
        if result["processed"]:
            frames, _ = self.batch.frames.get(name, (0, None))
            self.batch.frames[name] = (frames + result["processed"], result["last_frame_at"])
            self.totals.frames[name] += result["processed"]
        self.set_state(name, result["state"], result.get("last_frame_at"))

    def set_state(self, name: str, state: str, last_frame_at: str | None = None) -> None:
        if self.states.get(name) != state:
            if self.states.get(name) is not None:
                self.log(f"{name}: {state}")
            self.states[name] = state
            # down/reconnecting since the last frame it sent; live or connecting since now
            since = last_frame_at if state in ("down", "reconnecting") and last_frame_at else utc_text()
            self.batch.states[name] = (state, since)

    def flush(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_flush < FLUSH_S:
            return
        self.last_flush = time.monotonic()
        statuses = self.alerts.take_statuses()
        batch, self.batch = self.batch, Batch([], [], {}, {})
        if batch.people or batch.alerts or batch.states or batch.frames or batch.periods:
            people, alerts = self.store.write(batch)
            self.totals.people += people
            self.totals.alerts += alerts
        for camera, track, status in statuses:
            self.store.set_delivery(camera, track, status)
        self.prune()


def run_live(fleet: Fleet, store: Store, workers: list, log: Log, stop: threading.Event,
             retain_s: float | None = None) -> Totals:
    """Sample every camera at its rate until `stop` is set (Ctrl-C); then close every camera cleanly."""
    import ray
    from ray.exceptions import RayActorError

    try:
        from ray.exceptions import ActorUnavailableError
    except ImportError:  # older Ray
        ActorUnavailableError = RayActorError  # noqa: N806

    totals = Totals()
    alerts = Alerts(fleet.defaults.webhook)
    writer = Writer(store, alerts, totals, log, retain_s)
    writer.prune(force=True)
    cameras = list(fleet.cameras)
    owner_index = {cam.name: i % len(workers) for i, cam in enumerate(cameras)}
    owner = {name: workers[i] for name, i in owner_index.items()}
    incarnation: dict[int, str] = {}
    due = {cam.name: 0.0 for cam in cameras}
    in_flight: dict = {}  # ObjectRef -> camera
    seen_worker: dict[str, str] = {}
    try:
        while not stop.is_set():
            now = time.monotonic()
            busy = set(in_flight.values())
            for cam in cameras:
                if cam.name not in busy and due[cam.name] <= now:
                    in_flight[owner[cam.name].step.remote(cam)] = cam.name
                    due[cam.name] = now + 1.0 / cam.fps
            wait = max(0.01, min([d for n, d in due.items() if n not in set(in_flight.values())] + [now + 0.5]) - now)
            if not in_flight:  # ray.wait([]) returns at once: sleep till the next camera is due (Ctrl-C wakes it)
                stop.wait(min(wait, FLUSH_S))
                writer.flush()
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=min(wait, 0.5))
            for ref in ready:
                name = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except (RayActorError, ActorUnavailableError):
                    # The worker died (Ray is restarting it): its cameras show as reconnecting until it is back.
                    if writer.states.get(name) != "reconnecting":
                        log(f"{name}: its worker stopped; Ray is restarting it")
                    writer.set_state(name, "reconnecting")
                    due[name] = time.monotonic() + 0.5
                    continue
                index = owner_index[name]
                if incarnation.get(index) not in (None, result["incarnation"]):
                    totals.restarts += 1
                    log(f"worker {index + 1} is back (restarted by Ray): its cameras resume")
                incarnation[index] = result["incarnation"]
                if seen_worker.get(name) != result["worker"]:
                    seen_worker[name] = result["worker"]
                    store.set_worker(name, result["worker"])
                writer.add(result)
            writer.flush()
    finally:
        # Ctrl-C or the end: finish every camera (people still in view are counted), write, stop the webhook.
        # The steps still in flight are taken first: a worker runs them before the stop sent after them, and a
        # step's "live" taken after its camera's "stopped" would say it is live again.
        stops = [owner[cam.name].stop.remote(cam) for cam in cameras]
        deadline = time.monotonic() + STOP_S
        for refs in (list(in_flight), stops):
            pending = refs
            while pending and time.monotonic() < deadline:
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=max(0.1, deadline - time.monotonic()))
                for ref in ready:
                    try:
                        writer.add(ray.get(ref))
                    except Exception:  # a worker that died while stopping: what it had in view is lost, the rest is kept
                        pass
        for cam in cameras:
            writer.set_state(cam.name, "stopped")
        writer.flush(force=True)
        alerts.close()
        writer.flush(force=True)
    return totals


@dataclass
class ArchivePlan:
    """What an archive run does with each video of the folder (videos_to_do)."""

    todo: list[Camera] = field(default_factory=list)
    already_done: int = 0  # done by an earlier run: known by path (unchanged) or by content
    moved: int = 0  # of those, known only by content (moved or copied since)
    twins: dict[str, str] = field(default_factory=dict)  # a second copy in this folder: the first
    replaced: list[str] = field(default_factory=list)  # done before under its path, but another recording is there now
    fingerprints: dict[str, str] = field(default_factory=dict)  # camera: fingerprint ('' unreadable) of the videos read
    stats: dict[str, str] = field(default_factory=dict)  # camera: file stat of the videos read
    restat: dict[str, str] = field(default_factory=dict)  # path: file stat of a video done, read again, found the same


def videos_to_do(cameras: tuple[Camera, ...], done: Mapping[str, DoneVideo],
                 stat_of: Callable[[str], str] = file_stat,
                 fingerprint_of: Callable[[str], str | None] = video_fingerprint) -> ArchivePlan:
    """The archive's videos not yet done. A video done before is known by its path only while its file is
    unchanged (size, modification and change times as when it was done): nothing of it is read, so a rerun over
    a large archive reads only what is new or changed. Any other video is read for its fingerprint (size and hash
    of its first and last MiB), and is done already if that is a done video's, wherever that was (moved, copied);
    another recording saved under a done video's path is done again. A video done before fingerprints were kept
    is known by its path alone (there is nothing else to compare)."""
    plan = ArchivePlan()
    done_content = {video.fingerprint for video in done.values() if video.fingerprint}
    first_of: dict[str, str] = {}
    for cam in cameras:
        known = done.get(cam.source)
        stat = stat_of(cam.source)
        if known is not None and ((stat and known.file_stat == stat) or not known.fingerprint):
            plan.already_done += 1
            continue
        fingerprint = fingerprint_of(cam.source) or ""
        plan.fingerprints[cam.name], plan.stats[cam.name] = fingerprint, stat
        if known is not None and fingerprint == known.fingerprint:  # touched, or done before file stats were kept
            plan.already_done += 1
            plan.restat[cam.source] = stat
            continue
        if fingerprint and fingerprint in done_content:
            plan.already_done += 1
            plan.moved += 1
            continue
        if known is not None and fingerprint:
            plan.replaced.append(cam.name)
        if fingerprint and fingerprint in first_of:
            plan.twins[cam.name] = first_of[fingerprint]
            continue
        if fingerprint:
            first_of[fingerprint] = cam.name
        plan.todo.append(cam)
    return plan


def run_archive(fleet: Fleet, store: Store, workers: list, log: Log, stop: threading.Event) -> Totals:
    """Every video not yet done, one per worker at a time; each video's results in one transaction. A line per
    video as it ends; in the store a video ends 'done', or 'failed' (it cannot be read), or 'stopped' (Ctrl-C
    came first: a rerun does it)."""
    import ray
    from ray.exceptions import RayActorError

    totals = Totals()
    alerts = Alerts(fleet.defaults.webhook)
    plan = videos_to_do(fleet.cameras, store.videos_done())
    store.set_file_stats(plan.restat)  # read again and found the same: the next rerun need not read them
    todo, fingerprints = plan.todo, plan.fingerprints
    totals.already_done, totals.copies = plan.already_done, len(plan.twins)
    if plan.already_done:
        log(f"{plan.already_done} of {len(fleet.cameras)} videos already done (in the store): skipped"
            + (f", {plan.moved} of them done where they were before (moved or copied since)" if plan.moved else ""))
    for name in plan.replaced:
        log(f"{name}: not the recording done before under this path: done too (the earlier one's results are kept)")
    for twin, first in plan.twins.items():
        log(f"{twin}: the same video as {first}: counted once")
    store.register_cameras(todo)
    idle = list(workers)
    in_flight: dict = {}  # ObjectRef -> (camera, worker, tries)
    queue = [(cam, 0) for cam in todo]
    ended = 0

    def failed(cam: Camera, why: str) -> None:
        nonlocal ended
        ended += 1
        totals.skipped.append(f"{cam.name}: {why}")
        log(f"skipped: {cam.name}: {why} ({ended}/{len(todo)})")
        store.set_state(cam.name, "failed")

    try:
        while (queue or in_flight) and not stop.is_set():
            while queue and idle:
                cam, tries = queue.pop(0)
                worker = idle.pop(0)
                in_flight[worker.run_video.remote(cam)] = (cam, worker, tries)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            for ref in ready:
                cam, worker, tries = in_flight.pop(ref)
                idle.append(worker)
                try:
                    result = ray.get(ref)
                except RayActorError:
                    totals.restarts += 1
                    if tries < 2:
                        log(f"{cam.name}: its worker stopped; trying the video again")
                        queue.append((cam, tries + 1))
                    else:
                        failed(cam, "its worker stopped three times on it")
                    continue
                for note in result["notes"]:
                    log(note)
                if result.get("error"):
                    failed(cam, result["error"])
                    continue
                for alert in result["alerts"]:
                    alerts.submit(alert)
                batch = Batch(result["people"], result["alerts"], {cam.name: ("done", utc_text())},
                              {cam.name: (result["frames"], None)}, result.get("periods", []))
                people, new_alerts = store.finish_video(cam.source, fingerprints[cam.name], cam.name, result["started"],
                                                        result["frames"], batch, plan.stats[cam.name])
                totals.people += people
                totals.alerts += new_alerts
                totals.frames[cam.name] += result["frames"]
                totals.videos += 1
                ended += 1
                log(f"{cam.name}: done, {result['frames']} frames, {people} people, {new_alerts} alerts "
                    f"({ended}/{len(todo)})")
    finally:
        alerts.close()
        for camera, track, status in alerts.take_statuses():
            store.set_delivery(camera, track, status)
        for cam, *_ in queue + list(in_flight.values()):  # cut by Ctrl-C: not 'starting' for ever
            store.set_state(cam.name, "stopped")
    totals.interrupted = stop.is_set() and bool(queue or in_flight)
    return totals


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`: the driver loop ends at its next turn and closes everything. Called again
    once Ray has started: ray.init puts its own SIGTERM handler (an exit on the spot) in place of this one."""
    def handler(signum, _frame):
        if stop.is_set():  # a second Ctrl-C: stop now (the store is still consistent: one transaction per batch)
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
