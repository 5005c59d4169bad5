"""THE PRIVACY STAGE SLOT: what may be kept of the people in a frame, applied before anything is drawn or saved.

It runs inside Pipeline.process after the tracker and people stage (so verdicts and counts are already made
from the real picture) and before annotation and the sinks (so nothing downstream, the annotated video,
crops, people/ and alerts/ pictures included, sees more than this stage leaves). Today it is a no-op for
every level: PrivacySettings (maskdet.settings) carries level, blur_margin, retain and period, and the
blurring (level "blur"), the numbers-only mode ("counts") and retention are to be written here.

Mind one path around it: the people stage (3) copies each person's best face crop from the frame as it
is then, before this stage (maskdet.monitoring.people.crop_box, for people/ and report.html thumbnails).
Alert pictures are cut later, by AlertSink, from the same Frame object, so they see what this stage left
if it changes frame.image in place.
"""

from __future__ import annotations

from maskdet.inference.detections import Detections, Frame
from maskdet.settings import PrivacySettings


class PrivacyStage:
    """Called once per frame as `det = stage(frame, det)`; may change frame.image in place or replace it."""

    def __init__(self, settings: PrivacySettings):
        settings.check()
        self.settings = settings

    @property
    def active(self) -> bool:
        return self.settings.level != "off"

    def __call__(self, frame: Frame, det: Detections) -> Detections:
        if not self.active:
            return det  # level "off": frames and detections pass untouched
        # TODO(issue 21, privacy): blur det.xyxy (grown by settings.blur_margin) in frame.image for "blur";
        # for "counts", keep no pictures of people. Until then every level leaves the frame as it is.
        return det
