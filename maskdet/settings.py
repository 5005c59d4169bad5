"""Every setting of the per-frame pipeline and of the commands built on it, each default written once.

`Settings` is what builds a `maskdet.pipeline.Pipeline`: one section per concern, so a camera worker, the
server or a test can make one without any command line:

    Settings(detection=DetectionSettings(conf=0.4), monitoring=MonitoringSettings(track=True))

The scripts' argparse defaults are read from these dataclasses (maskdet/cli/detect.py, serve.py,
prelabel.py); tests/test_settings.py holds them equal. This module is low in the package (no numpy, no
OpenCV): the scripts import it before parsing arguments, and every layer may import it.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from maskdet.config import PROJECT_ROOT
from maskdet.errors import UserError

# The people stage (maskdet.monitoring.people): frames a track needs to count as a person, and how long
# an alerting verdict must hold.
MIN_FRAMES = 5
ALERT_AFTER_S = 2.0
# Their ceilings: past them no person would ever be counted or alerted on (a typo, not a choice).
MAX_MIN_FRAMES = 1_000_000  # over 9 hours at 30 fps
MAX_ALERT_AFTER_S = 86_400.0  # a day
PRIVACY_LEVELS = ("off", "blur", "counts")
# What serve.py offers (--privacy, ?privacy=): it answers with pictures, so "counts" (no picture at all) is not one.
SERVE_PRIVACY_LEVELS = PRIVACY_LEVELS[:2]

# What an outside image or video may be, measured from its header before anything is decoded.
MAX_PIXELS = 100_000_000  # 10,000 x 10,000: decoded as BGR, 300 MB
MAX_VIDEO_PIXELS = 4096 * 2160  # a frame of 4K video; decoded, each frame in FFmpeg's pool takes 13 MB (YUV)
MAX_VIDEO_FRAMES = 108_000  # an hour at 30 fps


def image_file_limit(max_pixels: int = MAX_PIXELS) -> int:
    """The most bytes an image file within max_pixels needs: 8 a pixel (16-bit RGBA, uncompressed) and
    room for metadata. Past it the file is not read at all."""
    return (64 << 20) + 8 * max_pixels


# Sliced inference (maskdet.inference.tiles): a tile side is 0 (off) or in this range of frame pixels.
TILE_RANGE = (64, 8192)


def default_of(cls: type, name: str) -> Any:
    """The default of one field of a settings dataclass (for argparse, and for dataclasses whose other
    fields have no default, like ServeSettings)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name}")


@dataclass(frozen=True)
class DetectSettings:
    """What the detector's decoding uses (maskdet.inference.detectors): which boxes --conf, --iou,
    --max-det, --classes and --agnostic-nms keep."""

    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 1000
    classes: tuple[int, ...] | None = None
    agnostic_nms: bool = False
    # every class a box scores over conf, each its own box (Ultralytics' validator does this when it measures mAP;
    # detect.py gives each face its best class only)
    multi_label: bool = False


@dataclass
class DetectionSettings:
    """The detector: which model, at what size, on which device, keeping which boxes."""

    weights: str | Path | None = None  # None: maskdet.models.default_weights() (models/best.onnx, else best.pt)
    imgsz: int | None = None  # None: the model's own
    conf: float = DetectSettings.conf
    iou: float = DetectSettings.iou
    max_det: int = DetectSettings.max_det
    classes: tuple[int, ...] | list[int] | None = None
    agnostic_nms: bool = DetectSettings.agnostic_nms
    device: str | None = None  # None: the GPU if there is one
    half: bool = False
    tile: int = 0  # sliced inference: tile side in frame pixels, 0 = off (maskdet.inference.tiles)
    tile_overlap: float = 0.25  # share of a tile shared with its neighbour
    augment: bool = False  # test-time augmentation: the mirror image too, boxes fused (maskdet.inference.augment)
    # the second stage, a classifier of face crops (maskdet.inference.second_stage): None = the shipped one
    # (models/second_stage.onnx) when there is one, "off" = none, or a path
    second_stage: str | Path | None = None

    def finding(self) -> DetectSettings:
        """What the detector keeps: every class and at least the default number of boxes. --classes and --max-det
        choose what is reported (maskdet.pipeline.step.reported), after the privacy stage has blurred every face
        the model found: a face of a class left out of the report is still a face."""
        return DetectSettings(self.conf, self.iou, max(self.max_det, DetectSettings.max_det), None, self.agnostic_nms)


@dataclass
class MonitoringSettings:
    """The tracker and people stage (--track, --line, --alert); off unless one of them is asked for."""

    track: bool = False
    line: str | None = None  # "x1,y1,x2,y2", parsed by maskdet.monitoring.people.Line
    min_frames: int = MIN_FRAMES
    alert: list[str] | None = None  # class names to alert on
    alert_after: float = ALERT_AFTER_S
    alert_url: str | None = None

    @property
    def enabled(self) -> bool:
        """--line and --alert count people: they need the tracker too (and --alert-url asks for alerts: without --alert,
        the monitor's own check says what is missing)."""
        return bool(self.track or self.line or self.alert or self.alert_url)


@dataclass
class SourceSettings:
    """What detect.py reads (maskdet.inference.sources)."""

    source: str = "0"
    vid_stride: int = 1
    stream_timeout: float = 30.0  # live sources: 0 keeps reconnecting forever
    max_pixels: int = MAX_PIXELS  # an image file, measured from its header before decoding (skipped above)


@dataclass
class OutputSettings:
    """How results are drawn, shown and saved (the sinks, outside the per-frame step)."""

    show: bool = False
    nosave: bool = False
    save_txt: bool = False
    save_conf: bool = False
    save_crop: bool = False
    save_csv: bool = False
    save_json: bool = False
    project: str | Path = PROJECT_ROOT / "runs" / "detect"
    name: str = "exp"
    exist_ok: bool = False
    line_thickness: int | None = None  # None: by image size
    hide_labels: bool = False
    hide_conf: bool = False
    quiet: bool = False


@dataclass
class PrivacySettings:
    """What may be kept of the people seen (the privacy stage, maskdet.pipeline.privacy; the work is in maskdet.privacy).

    level: None is "blur" when people are monitored and "off" otherwise. "off" keeps frames as they are;
    "blur" blurs every face found before anything is drawn, saved or sent, and keeps no face crop; "counts"
    keeps counts by verdict per `period`, no picture and no row per person. retain: outputs of monitoring runs
    older than this are deleted (None: kept). Durations are seconds, or text such as "72h" (s, m, h, d).
    """

    level: str | None = None
    blur_margin: float = 0.25  # of the box's width and height, on each side: hair and jaw go too
    retain: float | str | None = None
    period: float | str | None = None  # --privacy counts: None is 20 minutes

    def check(self) -> None:
        if self.level is not None and self.level not in PRIVACY_LEVELS:
            raise UserError(f"--privacy must be one of {', '.join(PRIVACY_LEVELS)}, not {self.level!r}")
        if not 0 <= self.blur_margin <= 1:
            raise UserError(f"blur margin must be between 0 and 1, got {self.blur_margin}")
        self.retain_s, self.period_s  # noqa: B018 (parsed and range-checked: a bad one is a one-line error now)

    def resolved(self, monitoring: bool) -> str:
        """The level asked for, or the default: blur when people are monitored, off for plain detection."""
        self.check()
        return self.level or ("blur" if monitoring else "off")

    @property
    def retain_s(self) -> float | None:
        return None if self.retain is None else parse_duration(self.retain, "--retain")

    @property
    def period_s(self) -> float:
        return COUNTS_PERIOD_S if self.period is None else float(parse_period(self.period, "--period"))


COUNTS_PERIOD_S = 20 * 60.0
DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_S = 10 * 365 * 86400  # ten years: anything longer is a typo
# privacy counts (detect.py and monitor.py alike): no row covers a minute, because a minute with one person in it is
# that person; a period of a minute or less would be that same row again. The shortest period is therefore the next
# whole minute up, and the longest a week.
MIN_PERIOD_S = 2 * 60
MAX_PERIOD_S = 7 * 86400
PERIOD_RANGE = f"from {MIN_PERIOD_S // 60} minutes (a shorter row with one person in it is that person) to {MAX_PERIOD_S // 86400} days"


def parse_period(value: float | str, key: str) -> int:
    """A privacy-counts period in whole seconds: 20m, 1h, 150s or a number of seconds, PERIOD_RANGE; anything else
    is a one-line UserError naming `key` (a flag, or a cameras file's line)."""
    seconds = duration_seconds(value, key)
    if not MIN_PERIOD_S <= seconds <= MAX_PERIOD_S or seconds != int(seconds):  # NaN fails the first
        raise UserError(f"{key} must be {PERIOD_RANGE}, in whole seconds, not {value}")
    return int(seconds)


def duration_seconds(value: float | str, flag: str) -> float:
    """72h, 20m, 30s, 7d, 1.5h, a plain number of seconds as text (3600), or a number from Python, in seconds,
    unchecked; text of any other form is a one-line error naming `flag`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value).lower())
    if not match:
        raise UserError(f"{flag} must be a number and a unit (s, m, h or d), such as 72h or 20m, not {value!r}")
    return float(match.group(1)) * DURATION_UNITS_S[match.group(2) or "s"]


def parse_duration(value: float | str, flag: str, minimum_s: float = 1.0) -> float:
    """duration_seconds, from minimum_s to ten years; out of range is a one-line error."""
    seconds = duration_seconds(value, flag)
    if not minimum_s <= seconds <= MAX_DURATION_S:  # NaN fails both
        raise UserError(f"{flag} {value}: must be between {minimum_s:g} s and {MAX_DURATION_S // 86400} days")
    return seconds


# Privacy's keys in Settings.from_flat (run()'s keywords): "level" and "period" alone would be unclear there.
PRIVACY_PREFIX = "privacy_"


@dataclass
class Settings:
    """The one object a Pipeline (and detect.py's runner) is built from."""

    detection: DetectionSettings = field(default_factory=DetectionSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    @staticmethod
    def flat_names() -> dict[str, tuple[str, str]]:
        """run()'s keyword -> (section, field): detect.py's flag names, privacy's with PRIVACY_PREFIX."""
        out = {}
        for section in fields(Settings):
            prefix = PRIVACY_PREFIX if section.name == "privacy" else ""
            for f in fields(section.default_factory):  # type: ignore[arg-type]
                out[prefix + f.name] = (section.name, f.name)
        return out

    @classmethod
    def from_flat(cls, **kwargs: Any) -> Settings:
        """Settings from detect.py's keywords (`run(source=..., save_csv=True)`, or vars(args))."""
        names = cls.flat_names()
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        sections: dict[str, dict[str, Any]] = {f.name: {} for f in fields(cls)}
        for key, value in kwargs.items():
            section, name = names[key]
            sections[section][name] = value
        return cls(**{f.name: f.default_factory(**sections[f.name]) for f in fields(cls)})  # type: ignore[misc]

    def flat(self) -> dict[str, Any]:
        """The inverse of from_flat."""
        return {key: getattr(getattr(self, section), name) for key, (section, name) in self.flat_names().items()}


@dataclass
class ServeSettings:
    """serve.py: the detector's settings it passes on, and the server's own limits."""

    weights: Path
    results_dir: Path
    conf: float = DetectionSettings.conf
    iou: float = DetectionSettings.iou
    imgsz: int | None = None
    device: str | None = None
    tile: int = DetectionSettings.tile
    augment: bool = DetectionSettings.augment
    workers: int = 1
    backlog: int | None = None  # requests waiting for a worker before 503 (default: as many as workers)
    max_upload_mb: float = 50.0
    max_pixels: int = MAX_PIXELS  # a photo or camera frame, from its header before decoding (413 above)
    max_video_pixels: int = MAX_VIDEO_PIXELS  # a video frame, from the container before decoding
    max_video_frames: int = MAX_VIDEO_FRAMES
    token: str | None = None
    keep_minutes: float = 60.0
    max_saved_mb: float = 2048.0  # results kept at once: past it the oldest go before keep_minutes is up
    max_video_jobs: int = 2
    max_live: int = 8  # cameras on /api/live at once; each holds up to a frame (live_frame_bytes) while it arrives
    live_frame_bytes: int = 8 << 20  # one camera frame as JPEG (a 4K frame at quality 95 is ~3 MB); bigger: closed, 1009
    min_upload_rate: int = 32 << 10  # bytes/s a request body must average after upload_grace_s (a trickle: 408)
    upload_grace_s: float = 30.0
    live_timeout_s: float = 30.0  # each camera frame must arrive, and its answer be read, within this (else closed, 1001)
    send_timeout_s: float = 60.0  # a client that takes nothing sent to it for this long is dropped (Linux)
    header_timeout_s: float = 10.0  # a request's headers must all arrive within this (else 408, closed): slowloris
    fleet_db: str | None = None  # monitor.py's store (SQLite path or postgresql:// URL) for the /fleet page
    privacy: str = "off"  # "blur": every face found is blurred in every picture served or kept, whatever a request asks

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_saved_bytes(self) -> int:
        return int(self.max_saved_mb * 1024 * 1024)

    def pipeline_settings(self) -> Settings:
        """The per-frame step the server runs: detection only, boxes drawn as detect.py draws them."""
        return Settings(detection=DetectionSettings(weights=self.weights, imgsz=self.imgsz, conf=self.conf, iou=self.iou,
                                                    device=self.device, tile=self.tile, augment=self.augment))
