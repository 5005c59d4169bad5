"""People, not frames: the tracker keeps an ID on a moving face, one verdict per person however the class
flickers, line crossings counted by direction, one alert per person after --alert-after seconds."""

from __future__ import annotations

import numpy as np
import pytest

from maskdet.errors import UserError
from maskdet.inference.detections import Detections, Frame
from maskdet.monitoring.people import Line, MonitorSettings, PeopleCounter
from maskdet.monitoring.tracking import Tracker

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
W, H = 320, 240


def boxes(*items: tuple[float, float, int, float]) -> Detections:
    """Detections of 40x40 faces centred at (x, y), with a class and a confidence each."""
    xyxy = np.array([[x - 20, y - 20, x + 20, y + 20] for x, y, _, _ in items], np.float32).reshape(-1, 4)
    return Detections(xyxy, np.array([c for *_, c in items], np.float32), np.array([k for _, _, k, _ in items], int), NAMES)


def video_frame(index: int, source: str = "door.mp4", fps: float = 10.0) -> Frame:
    return Frame(np.zeros((H, W, 3), np.uint8), source, "door", "video", index, index / fps, fps=fps, position="1/1")


def tracked(ids: list[int], det: Detections) -> Detections:
    det.tracker_id = np.array(ids, int)
    return det


def test_tracker_keeps_one_id_on_each_of_two_moving_faces():
    tracker = Tracker()
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for i in range(20):
        det = tracker(video_frame(i), boxes((20 + 10 * i, 60, 0, 0.9), (300 - 10 * i, 180, 1, 0.9)))
        for j in range(2):
            if det.tracker_id[j] >= 0:
                seen[j].add(int(det.tracker_id[j]))
    assert seen[0] and seen[1] and len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]


def test_tracker_confirms_a_track_on_its_second_frame_and_keeps_the_detection_order():
    tracker = Tracker()
    first = tracker(video_frame(0), boxes((50, 50, 0, 0.9), (200, 50, 1, 0.8)))
    assert list(first.tracker_id) == [-1, -1]  # not confirmed yet: drawn and saved without an ID
    second = tracker(video_frame(1), boxes((52, 50, 0, 0.9), (202, 50, 1, 0.8)))
    assert list(second.class_id) == [0, 1] and (second.tracker_id > 0).all() and len(set(second.tracker_id)) == 2


def test_tracker_ids_stay_unique_across_sources_and_a_folder_of_images_is_one_view(tmp_path):
    tracker = Tracker()
    ids = set()
    for i in range(3):
        ids |= set(tracker(video_frame(i, "a.mp4"), boxes((50 + i, 50, 0, 0.9))).tracker_id)
    folder_ids = set()
    for i in range(3):
        frame = Frame(np.zeros((H, W, 3), np.uint8), str(tmp_path / f"img{i}.jpg"), f"img{i}", "image", position=f"{i + 1}/3")
        folder_ids |= set(tracker(frame, boxes((50 + i, 50, 0, 0.9))).tracker_id)
    assert ids - {-1} == {1}
    assert folder_ids - {-1} == {2}  # one person across the images of one folder, a new ID after the video


def test_a_flickering_face_is_one_person_with_the_confidence_weighted_verdict():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=3))
    # without_mask on most frames with high confidence, with_mask now and then with low confidence
    classes = [1, 0, 1, 0, 1, 1, 0, 1]
    for i, cls in enumerate(classes):
        counter(video_frame(i), tracked([7], boxes((100, 100, cls, 0.9 if cls == 1 else 0.4))))
    counter.finish_all()
    (person,) = counter.take_left()
    assert person.track_id == 7 and person.frames == 8
    assert counter.verdict_name(person) == "without_mask"
    assert person.share() == pytest.approx(5 / 8)
    assert counter.by_verdict() == {"without_mask": 1}


def test_the_vote_weighs_confidence_not_just_frames():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    for i, (cls, conf) in enumerate([(0, 0.3), (0, 0.3), (0, 0.3), (1, 0.95), (1, 0.95)]):
        counter(video_frame(i), tracked([1], boxes((100, 100, cls, conf))))
    assert counter.verdict_name(counter.active[1]) == "without_mask"  # 1.9 against 0.9


def test_a_track_shorter_than_min_frames_is_not_a_person():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=5))
    for i in range(4):
        counter(video_frame(i), tracked([3], boxes((100, 100, 1, 0.9))))
    counter.finish_all()
    assert counter.take_left() == [] and counter.people == [] and counter.short_tracks == 1


def test_a_person_unseen_for_longer_than_the_tracker_keeps_them_has_left():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2, lost_seconds=1.0))
    for i in range(3):
        counter(video_frame(i), tracked([1], boxes((100, 100, 0, 0.9))))
    counter(video_frame(10), tracked([], boxes()))  # 0.8 s later: may still come back
    assert counter.take_left() == []
    counter(video_frame(13), tracked([], boxes()))  # 1.1 s after the last sighting
    (person,) = counter.take_left()
    assert (person.first_frame, person.last_frame, person.frames) == (0, 2, 3)


def test_one_alert_per_person_once_the_verdict_has_held_for_alert_after_seconds():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2, alert_classes=("without_mask",), alert_after=0.5))
    raised_at = []
    for i in range(40):
        counter(video_frame(i), tracked([1, 2], boxes((100, 100, 1, 0.9), (200, 100, 0, 0.9))))
        raised_at += [(a.person.track_id, i) for a in counter.take_alerts()]
    # verdict from frame 1 (the 2nd frame); held 0.5 s at 10 fps: frame 6. Never again while in view.
    assert raised_at == [(1, 6)]


def test_alert_on_an_unknown_class_is_a_user_error():
    with pytest.raises(UserError, match="unknown class 'no_mask'"):
        PeopleCounter(NAMES, MonitorSettings(alert_classes=("no_mask",)))


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "0,0,0,0", "1,2,3,nan"])
def test_a_bad_line_is_a_user_error(text):
    with pytest.raises(UserError, match="--line"):
        Line.parse(text)


def test_line_in_fractions_and_in_pixels_are_the_same_line():
    fractions, pixels = Line.parse("0,0.5,1,0.5"), Line.parse("0,120,320,120")
    for line in (fractions, pixels):
        a, b = line.points(W, H)
        assert list(a) == [0, 120] and list(b) == [320, 120]


@pytest.mark.parametrize("text, misses", [
    ("0,500,2000,500", True),  # pixels of a taller frame: below this one
    ("400,0,400,240", True),  # right of it
    ("0,120,320,120", False), ("-100,120,1000,120", False),  # across it, ends outside included
    ("0,0.5,1,0.5", False),  # fractions always fall on the frame
])
def test_a_line_in_pixels_knows_when_it_lies_wholly_outside_the_frame(text, misses):
    assert Line.parse(text).misses(W, H) is misses


def test_line_crossings_have_a_direction_and_the_extension_of_the_line_does_not_count():
    line = Line.parse("0.25,0.5,0.75,0.5")  # x from 80 to 240 at y 120, drawn left to right
    assert line.crossing(np.array([100, 100]), np.array([100, 140]), W, H) == "in"  # walking down
    assert line.crossing(np.array([100, 140]), np.array([100, 100]), W, H) == "out"
    assert line.crossing(np.array([300, 100]), np.array([300, 140]), W, H) is None  # beside the line
    assert line.crossing(np.array([100, 100]), np.array([100, 119]), W, H) is None  # not across


@pytest.mark.parametrize("path, expected", [([100, 120, 140], ["in"]), ([100, 120, 100], []), ([140, 120, 120, 100], ["out"])])
def test_a_centre_landing_exactly_on_the_line_counts_once_if_it_goes_on_and_not_if_it_goes_back(path, expected):
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, line=Line.parse("0,120,320,120")))
    for i, y in enumerate(path):
        counter(video_frame(i), tracked([1], boxes((100, y, 0, 0.9))))
    assert [d for d, _ in counter.active[1].crossings] == expected


def test_people_crossing_the_line_are_counted_each_way_by_verdict():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2, line=Line.parse("0,0.5,1,0.5")))
    for i in range(12):
        down, up = 60 + 12 * i, 180 - 12 * i
        counter(video_frame(i), tracked([1, 2], boxes((100, down, 1, 0.9), (200, up, 0, 0.9))))
    counter.finish_all()
    counts = counter.line_counts()
    assert counts["in"] == {"without_mask": 1} and counts["out"] == {"with_mask": 1}
    assert "line: in 1 (1 without_mask); out 1 (1 with_mask)" in counter.lines()


def test_the_window_panel_and_the_summary_count_people_in_view_and_seen_by_verdict():
    from maskdet.monitoring.monitor import Monitor

    monitor = Monitor.from_args(NAMES, "0,0.5,1,0.5", 2, None, 2.0, None)
    for i in range(6):  # a masked face walks down across the line and stays; an unmasked one stands still
        monitor(video_frame(i), boxes((100, 60 + 20 * i, 0, 0.9), (250, 60, 1, 0.9)))
    panel = [text for text, _ in monitor.overlay()]
    assert panel == ["in view: 2", "people seen: 2", "  with_mask: 1", "  without_mask: 1", "  mask_weared_incorrect: 0",
                     "mask worn correctly: 50%", "line in: 1", "line out: 0"]
    colours = dict(monitor.overlay())
    assert colours["  without_mask: 1"] == (54, 67, 244)  # the class colour, as the boxes
    assert monitor.people.lines()[0] == "people: 2 seen (1 with_mask, 1 without_mask), 50% wearing a mask correctly; " \
                                        "2 in view at the end"
