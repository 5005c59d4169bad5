"""The cameras file: defaults for the fleet at the top, then one entry per camera.

    defaults:
      model: models/best.onnx      # one copy per worker
      fps: 2                       # frames sampled per camera per second (the newest frame each time)
      alert: [without_mask]        # verdicts that raise an alert, once per person
      alert_after: 2               # seconds the verdict must hold first
      webhook: https://host/hook   # alerts POSTed here from a background queue, with retries
      privacy: blur                # blur (default) | counts (counts per period only) | off
      tile: 0                      # sliced inference (small faces in large frames): tile side in pixels; 0 = off
      augment: false               # true: the mirror image too (more faces, twice the CPU)
      period: 20m                  # privacy counts: the length of a row of counts
    cameras:
      - name: door-1
        source: rtsp://10.0.0.5/stream1
        site: hq
        zone: entrance
        line: 0,0.6,1,0.6          # its own counting line (optional)
      - name: concourse
        source: rtsp://10.0.0.6/stream1
        tile: 480                  # a far 1080p camera: its own tiles (fps, alert, alert_after, min_frames,
                                   # tile and augment may be set per camera)

The file comes from outside: it is read with a size cap, parsed safely (no Python objects) and refused
if it uses YAML anchors or aliases (a few lines of aliases can expand to gigabytes). Every mistake is
found before anything starts and reported on its own line, with the line number it is on.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from maskdet.config import yaml_error_line
from maskdet.errors import UserError
from maskdet.inference.sources import STREAM_SCHEMES, VIDEO_SUFFIXES
from maskdet.monitoring.people import ALERT_AFTER_S, MIN_FRAMES, Line
from maskdet.settings import COUNTS_PERIOD_S, PRIVACY_LEVELS, TILE_RANGE, DetectionSettings, parse_period

MAX_FILE_BYTES = 1 << 20  # a fleet of 10,000 cameras is well under this
MAX_CAMERAS = 10_000
NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
PRIVACY = PRIVACY_LEVELS  # the per-frame step's levels; with "counts" the store keeps periods, never a person
MIN_TILE, MAX_TILE = TILE_RANGE
# A cameras file is four levels deep (cameras > a camera > alert > a class); a file nested far deeper is not one,
# and would exhaust Python's stack in the YAML composer.
MAX_NESTING = 20


URL_SCHEMES = tuple(s.removesuffix("://") for s in STREAM_SCHEMES)


@dataclass(frozen=True)
class FleetDefaults:
    """What every camera gets unless its entry says otherwise. The one place these defaults live."""

    model: str = ""  # empty: models/best.onnx (maskdet.inference.detect.default_weights)
    imgsz: int | None = None  # None: the model's own size
    conf: float = DetectionSettings.conf
    fps: float = 2.0
    min_frames: int = MIN_FRAMES
    alert: tuple[str, ...] = ()
    alert_after: float = ALERT_AFTER_S
    webhook: str | None = None
    privacy: str = "blur"  # people are monitored: faces are blurred in anything the step draws (the fleet keeps no pictures)
    period: int = int(COUNTS_PERIOD_S)  # privacy counts: seconds per row of counts (whole seconds, aligned to UTC)
    down_after: float = 30.0  # seconds without a frame before a reconnecting camera is shown as down
    tile: int = DetectionSettings.tile  # sliced inference: tile side in frame pixels, 0 = off (only frames larger are cut)
    augment: bool = DetectionSettings.augment  # test-time augmentation: the mirror image too, boxes fused


@dataclass(frozen=True)
class Camera:
    name: str
    source: str  # URL, video file path or webcam index (as text)
    site: str = ""
    zone: str = ""
    line: str | None = None
    alert: tuple[str, ...] = ()
    alert_after: float = ALERT_AFTER_S
    fps: float = 2.0
    min_frames: int = MIN_FRAMES
    tile: int = DetectionSettings.tile
    augment: bool = DetectionSettings.augment

    @property
    def kind(self) -> str:
        """'stream', 'webcam' or 'video'."""
        if self.source.isdigit():
            return "webcam"
        return "stream" if "://" in self.source else "video"


@dataclass(frozen=True)
class Fleet:
    path: Path
    defaults: FleetDefaults
    cameras: tuple[Camera, ...] = field(default_factory=tuple)

    @property
    def live(self) -> bool:
        return any(c.kind != "video" for c in self.cameras)


class CamerasFileError(Exception):
    """Every mistake in a cameras file, each a line 'FILE:LINE: what is wrong'."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


TOP_KEYS = ("defaults", "cameras")
DEFAULT_KEYS = ("model", "imgsz", "conf", "fps", "min_frames", "alert", "alert_after", "webhook", "privacy", "period",
                "down_after", "tile", "augment")
CAMERA_KEYS = ("name", "source", "site", "zone", "line", "alert", "alert_after", "fps", "min_frames", "tile", "augment")


class _Checker:
    """Walks the composed YAML nodes (which know their line numbers) and collects problems."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def bad(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.path}:{line}: {message}")

    def mapping(self, node: yaml.Node, what: str, keys: tuple[str, ...]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"{what} must be a mapping (key: value lines)")
            return None
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in keys:
                self.bad(key_node, f"unknown key {key!r} in {what} (known: {', '.join(keys)})")
            elif key in found:
                self.bad(key_node, f"{key!r} is given twice in {what}")
            else:
                found[key] = value_node
        return found

    def scalar(self, node: yaml.Node, key: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.bad(node, f"{key} must be a single value")
            return None
        return node.value

    def number(self, node: yaml.Node, key: str, low: float, high: float, integer: bool = False) -> float | None:
        text = self.scalar(node, key)
        if text is None:
            return None
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            self.bad(node, f"{key} must be {'a whole number' if integer else 'a number'}, not {text!r}")
            return None
        if not low <= value <= high or value != value:
            self.bad(node, f"{key} must be between {low:g} and {high:g}, not {text}")
            return None
        return value

    def period(self, node: yaml.Node, key: str) -> int | None:
        """20m, 1h, 150s or a number of seconds (see parse_period)."""
        text = self.scalar(node, key)
        if text is None:
            return None
        try:
            return parse_period(text, key)
        except UserError as exc:
            self.bad(node, str(exc))
            return None

    def model(self, node: yaml.Node, key: str, folder: Path) -> str | None:
        """The model file (or OpenVINO folder), relative to the cameras file as sources are; it must exist."""
        text = self.scalar(node, key)
        if text is None:
            return None
        path = Path(os.path.expanduser(text.strip()))
        path = path if path.is_absolute() else folder / path
        if not path.exists():
            self.bad(node, f"model {text!r}: no such file ({path})")
            return None
        return os.path.abspath(path)  # the workers may not share the driver's working folder

    def boolean(self, node: yaml.Node, key: str) -> bool | None:
        text = self.scalar(node, key)
        if text is None:
            return None
        if node.tag != "tag:yaml.org,2002:bool":  # YAML's own booleans only: true/false, yes/no, on/off
            self.bad(node, f"{key} must be true or false, not {text!r}")
            return None
        return text.lower() in ("true", "yes", "on")

    def tile(self, node: yaml.Node, key: str) -> int | None:
        value = self.number(node, key, 0, MAX_TILE, integer=True)
        if value is not None and 0 < value < MIN_TILE:
            self.bad(node, f"{key} must be 0 (off) or {MIN_TILE} to {MAX_TILE} pixels, not {value}")
            return None
        return None if value is None else int(value)

    def classes(self, node: yaml.Node, key: str) -> tuple[str, ...] | None:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out = []
        for item in items:
            text = self.scalar(item, key)
            if text is None:
                return None
            if text not in NAMES:
                self.bad(item, f"{key}: unknown class {text!r} (the model's classes are {', '.join(NAMES)})")
                return None
            out.append(text)
        return tuple(out)

    def url(self, node: yaml.Node, key: str, schemes: tuple[str, ...]) -> str | None:
        text = self.scalar(node, key)
        if text is None:
            return None
        parts = urlsplit(text)
        if parts.scheme.lower() not in schemes or not parts.netloc:
            self.bad(node, f"{key}: {text!r} is not a {'/'.join(s + '://' for s in schemes)} URL")
            return None
        return text


def _check_events(text: str, path: Path) -> list[str]:
    """Read the file's YAML events (no tree yet): one problem at the first anchor or alias (a file built of them,
    a YAML bomb, is not worth a line each), or at the first list or mapping nested deeper than MAX_NESTING (the
    composer would build it recursively, out of stack)."""
    lines = []
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            lines.append(event.start_mark.line + 1)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                return [f"{path}:{event.start_mark.line + 1}: lists or mappings nested over {MAX_NESTING} deep: "
                        "not a cameras file"]
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    if not lines:
        return []
    more = f" ({len(lines)} in all)" if len(lines) > 1 else ""
    return [f"{path}:{lines[0]}: YAML anchors and aliases (&, *) are not accepted here{more}"]


def read_fleet(path: str | Path, archive: bool = False) -> Fleet:
    """The cameras file, checked whole; raises CamerasFileError listing every mistake. With archive=True the
    cameras list may be left out (only the defaults are used)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise CamerasFileError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise CamerasFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise CamerasFileError([f"{path}: over {MAX_FILE_BYTES >> 20} MiB: not a cameras file"])
    try:
        text = data.decode("utf-8")
        problems = _check_events(text, path)
        if problems:
            raise CamerasFileError(problems)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise CamerasFileError([f"{path}: not UTF-8 text"]) from None
    except RecursionError:  # (bounded above: a second guard, should the parser itself recurse on some input)
        raise CamerasFileError([f"{path}: nested too deeply: not a cameras file"]) from None
    except yaml.YAMLError as exc:
        line = f":{yaml_error_line(exc)}" if yaml_error_line(exc) else ""
        raise CamerasFileError([f"{path}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    check = _Checker(path)
    if root is None:
        raise CamerasFileError([f"{path}: empty: it needs a 'cameras:' list"])
    top = check.mapping(root, "the file", TOP_KEYS) or {}
    defaults = _read_defaults(check, top.get("defaults"), path.parent)
    if archive and top.get("cameras") is None:
        cameras = []  # --archive takes only the defaults from the file
    else:
        cameras = _read_cameras(check, top.get("cameras"), defaults, path.parent, root)
    if check.problems:
        raise CamerasFileError(check.problems)
    return Fleet(path, defaults, tuple(cameras))


# The settings a camera may override, checked alike in `defaults:` and in a camera's own entry.
PER_CAMERA = {
    "fps": lambda check, value, key: check.number(value, key, 0.05, 30),
    "min_frames": lambda check, value, key: check.number(value, key, 1, 1000, integer=True),
    "alert": lambda check, value, key: check.classes(value, key),
    "alert_after": lambda check, value, key: check.number(value, key, 0, 3600),
    "tile": lambda check, value, key: check.tile(value, key),
    "augment": lambda check, value, key: check.boolean(value, key),
}


def _read_defaults(check: _Checker, node: yaml.Node | None, folder: Path) -> FleetDefaults:
    if node is None:
        return FleetDefaults()
    found = check.mapping(node, "defaults", DEFAULT_KEYS) or {}
    values: dict = {}
    for key, value in found.items():
        if key == "model":
            values[key] = check.model(value, key, folder)
        elif key == "imgsz":
            values[key] = check.number(value, key, 32, 4096, integer=True)
        elif key == "conf":
            values[key] = check.number(value, key, 0.0, 1.0)
        elif key in PER_CAMERA:
            values[key] = PER_CAMERA[key](check, value, key)
        elif key == "webhook":
            values[key] = check.url(value, key, ("http", "https"))
        elif key == "privacy":
            text = check.scalar(value, key)
            if text is not None and text not in PRIVACY:
                check.bad(value, f"privacy must be one of {', '.join(PRIVACY)}, not {text!r}")
                text = None
            values[key] = text
        elif key == "period":
            values[key] = check.period(value, key)
        elif key == "down_after":
            values[key] = check.number(value, key, 1, 86400)
    return FleetDefaults(**{k: v for k, v in values.items() if v is not None})


def _read_cameras(check: _Checker, node: yaml.Node | None, defaults: FleetDefaults, folder: Path,
                  root: yaml.Node) -> list[Camera]:
    if node is None:
        check.bad(root, "no 'cameras:' list")
        return []
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        check.bad(node, "'cameras' must be a list of cameras (- name: ..., source: ...)")
        return []
    if len(node.value) > MAX_CAMERAS:
        check.bad(node, f"more than {MAX_CAMERAS} cameras")
        return []
    cameras: list[Camera] = []
    names: dict[str, int] = {}
    for entry in node.value:
        found = check.mapping(entry, "a camera", CAMERA_KEYS)
        if found is None:
            continue
        values: dict = {key: getattr(defaults, key) for key in PER_CAMERA}
        ok = True
        for key in ("name", "source"):
            if key not in found:
                check.bad(entry, f"a camera without {key!r}")
                ok = False
        for key, value in found.items():
            if key == "name":
                name = check.scalar(value, key)
                if name is not None and not (0 < len(name) <= 100 and name.isprintable()):
                    check.bad(value, "name must be 1 to 100 printable characters")
                    name = None
                if name is not None and name in names:
                    check.bad(value, f"duplicate camera name {name!r} (first on line {names[name]})")
                    name = None
                if name is not None:
                    names[name] = value.start_mark.line + 1
                values[key] = name
            elif key == "source":
                values[key] = _source(check, value, folder)
            elif key in ("site", "zone"):
                text = check.scalar(value, key)
                if text is not None and not (len(text) <= 100 and text.isprintable()):
                    check.bad(value, f"{key} must be at most 100 printable characters")
                    text = None
                values[key] = text
            elif key == "line":
                text = check.scalar(value, key)
                if text is not None:
                    try:
                        Line.parse(text)
                    except Exception as exc:  # UserError: its message says what a line looks like
                        check.bad(value, str(exc).replace("--line", "line"))
                        text = None
                values[key] = text
            elif key in PER_CAMERA:
                values[key] = PER_CAMERA[key](check, value, key)
        if ok and all(values.get(k) is not None for k in ("name", "source", "alert", "alert_after", "fps", "min_frames")):
            cameras.append(Camera(**{k: v for k, v in values.items() if v is not None}))
    return cameras


def _source(check: _Checker, node: yaml.Node, folder: Path) -> str | None:
    text = check.scalar(node, "source")
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return text  # a webcam index
    if "://" in text:
        return check.url(node, "source", URL_SCHEMES)
    path = Path(os.path.expanduser(text))
    path = path if path.is_absolute() else folder / path
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        check.bad(node, f"source {text!r} is neither a stream URL ({', '.join(URL_SCHEMES)}), a webcam index nor a video file")
        return None
    if not path.is_file():
        check.bad(node, f"source {text!r}: no such video file")
        return None
    return str(path)


def archive_fleet(folder: str | Path, defaults: FleetDefaults | None = None, site: str = "") -> Fleet:
    """--archive DIR: every video file under the folder is a 'camera' at the site named after the folder, and named
    by the site and its path inside the folder (siteA/door.mp4): the store keys cameras by name, so the door.mp4
    of another archive folder (another site) stays another camera."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CamerasFileError([f"{folder}: not a folder (--archive takes a folder of videos)"])
    defaults = defaults or FleetDefaults()
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                    and not p.name.startswith("."))
    if not videos:
        raise CamerasFileError([f"{folder}: no video files in this folder"])
    site = site or folder.resolve().name
    return Fleet(folder, defaults, tuple(
        Camera(f"{site}/{p.relative_to(folder).as_posix()}", str(p.resolve()), site,
               p.parent.name if p.parent != folder else "", None, defaults.alert, defaults.alert_after, defaults.fps,
               defaults.min_frames, defaults.tile, defaults.augment) for p in videos))


def down_after_s(camera: Camera, defaults: FleetDefaults) -> float:
    """Seconds without a frame before a live camera is down: the fleet's down_after, and at least three sampling
    intervals (the worker's own 'live' window: a camera sampled every 20 s is not late after 19)."""
    return max(defaults.down_after, live_window_s(camera.fps))


def live_window_s(fps: float) -> float:
    """How old a camera's newest frame may be for it to count as live: three sampling intervals, 2 s at least."""
    return max(2.0, 3.0 / fps)


FINGERPRINT_BYTES = 1 << 20  # read at each end of a video: its container header and its first and last frames


def video_fingerprint(path: str | Path) -> str | None:
    """What a recorded video is, whatever its path: its size and a hash of its first and last MiB (the header and
    frames a recorder writes differ between any two recordings). An archive folder that is moved, or a video copied
    next to itself, is then not counted twice. None when it cannot be read (the worker says why)."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            digest = hashlib.sha256(file.read(FINGERPRINT_BYTES))
            if size > FINGERPRINT_BYTES:
                file.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
                digest.update(file.read(FINGERPRINT_BYTES))
    except OSError:
        return None
    return f"{size}:{digest.hexdigest()}"


def file_stat(path: str | Path) -> str:
    """A file as the file system describes it, without reading it: size, modification and change times (ns).
    A video done whose stat is the same is the file done (a copy over it, even one keeping the modification time,
    changes the change time); '' when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
