"""THE PRIVACY STAGE: what may be kept of the people in a frame, applied before anything is cropped, drawn or saved.

It runs inside Pipeline.process right after the detector (and the second stage), BEFORE the tracker and
people stage: the people stage copies each person's best crop from the frame (people/, report.html
thumbnails) and AlertSink cuts alert pictures from the same Frame later, so blurring frame.image in place
here is what makes every picture downstream -- annotated frames and videos, alert frames, thumbnails, the
window, the server's results -- show blurred faces. The tracker and the verdicts only use the boxes, so
they are the same with or without blur.

Levels (maskdet.settings.PrivacySettings; the work itself is in maskdet.privacy):
  off     frames pass untouched;
  blur    every box found, enlarged by blur_margin, is blurred in frame.image (maskdet.privacy.blur);
  counts  the frame is left alone here: nothing downstream keeps a picture (the runner writes no image and
          the monitor keeps no crop, maskdet.monitoring.monitor with privacy="counts").
"""

from __future__ import annotations

import time

from maskdet.inference.detections import Detections, Frame
from maskdet.privacy.blur import blur_faces
from maskdet.settings import PrivacySettings


class PrivacyStage:
    """Called once per frame as `det = stage(frame, det)`; changes frame.image in place for "blur"."""

    def __init__(self, settings: PrivacySettings, monitoring: bool = False):
        self.settings = settings
        self.level = settings.resolved(monitoring)  # checks the settings: a bad one is a one-line error

    @property
    def active(self) -> bool:
        return self.level != "off"

    def blur(self, frame: Frame, det: Detections) -> Detections:
        """Blur every face of `det` in frame.image, in place (also for one request of a server that does not
        blur by default); its cost goes to det.timings_ms["blur"], shown in detect.py's summary."""
        start = time.perf_counter()
        if len(det):
            blur_faces(frame.image, det.xyxy, self.settings.blur_margin)
        det.timings_ms["blur"] = (time.perf_counter() - start) * 1e3
        return det

    def __call__(self, frame: Frame, det: Detections) -> Detections:
        return self.blur(frame, det) if self.level == "blur" else det
