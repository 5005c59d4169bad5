"""The people stage at its edges: thumbnails and crops to the pixel, the verdict's share and confidence,
ties, the exact moments a person is lost or alerted, and the summary with nobody or without a line
(found by mutation testing, bench/mutation.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskdet.inference.detections import Detections, Frame
from maskdet.monitoring.people import Line, MonitorSettings, PeopleCounter, Person, crop_box, thumbnail

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")
W, H = 320, 240


def faces(*items: tuple[float, float, int, float], ids: list[int]) -> Detections:
    """40x40 faces centred at (x, y), each with a class and a confidence, tracked with `ids`."""
    xyxy = np.array([[x - 20, y - 20, x + 20, y + 20] for x, y, _, _ in items], np.float32).reshape(-1, 4)
    det = Detections(xyxy, np.array([c for *_, c in items], np.float32), np.array([k for _, _, k, _ in items], int), NAMES)
    det.tracker_id = np.array(ids, int)
    return det


def frame(index: int, fps: float = 4.0, image: np.ndarray | None = None) -> Frame:
    image = np.zeros((H, W, 3), np.uint8) if image is None else image
    return Frame(image, "door.mp4", "door", "video", index, index / fps, fps=fps)


def decoded(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


# --- thumbnails and crops --------------------------------------------------------------------------


@pytest.mark.parametrize(("wh", "thumb_wh"), [((200, 100), (96, 48)), ((100, 300), (32, 96)), ((96, 96), (96, 96)),
                                              ((60, 40), (60, 40)), ((1000, 1), (96, 1)), ((1, 1000), (1, 96))])
def test_a_thumbnail_fits_96_pixels_on_its_longest_side_and_is_never_enlarged(wh, thumb_wh):
    w, h = wh
    jpeg = thumbnail(np.full((h, w, 3), 128, np.uint8))
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert decoded(jpeg).shape[1::-1] == thumb_wh


def test_a_thumbnail_averages_fine_detail_instead_of_aliasing_it():
    checkerboard = (np.indices((500, 500)).sum(axis=0) % 2 * 255).astype(np.uint8)
    thumb = decoded(thumbnail(np.dstack([checkerboard] * 3)))
    assert thumb.shape[:2] == (96, 96)
    assert abs(float(thumb.mean()) - 127.5) < 8 and float(thumb.std()) < 12  # even grey, no moire


def test_a_thumbnail_keeps_the_picture():
    image = np.zeros((50, 80, 3), np.uint8)
    image[:, 40:] = (0, 0, 255)  # red on the right
    thumb = decoded(thumbnail(image))
    assert thumb[25, 70, 2] > 200 and thumb[25, 10].max() < 40


@pytest.mark.parametrize("image", [None, np.zeros((0, 10, 3), np.uint8), np.zeros((10, 0, 3), np.uint8)])
def test_no_picture_gives_no_thumbnail(image):
    assert thumbnail(image) is None


def coordinates_image(w: int = 200, h: int = 100) -> np.ndarray:
    """Each pixel holds its own x in blue and y in green: a crop says where it was cut."""
    ys, xs = np.indices((h, w))
    return np.dstack([xs, ys, np.zeros_like(xs)]).astype(np.uint8)


def test_a_crop_adds_15_percent_of_the_face_on_each_side():
    crop = crop_box(coordinates_image(), np.array([50.0, 20.0, 150.0, 80.0]))  # 100x60: 15 and 9 pixels more
    assert crop.shape == (78, 130, 3)
    assert tuple(crop[0, 0, :2]) == (35, 11) and tuple(crop[-1, -1, :2]) == (164, 88)


def test_a_crop_at_the_edges_of_the_frame_stops_there():
    image = coordinates_image()
    top_left = crop_box(image, np.array([0.0, 0.0, 40.0, 40.0]))
    assert top_left.shape[:2] == (46, 46) and tuple(top_left[0, 0, :2]) == (0, 0)
    bottom_right = crop_box(image, np.array([160.0, 60.0, 200.0, 100.0]))
    assert bottom_right.shape[:2] == (46, 46) and tuple(bottom_right[-1, -1, :2]) == (199, 99)


def test_a_crop_is_a_copy_not_a_view_of_the_frame():
    image = coordinates_image()
    crop = crop_box(image, np.array([50.0, 20.0, 150.0, 80.0]), margin=0.0)
    image[:] = 0
    assert crop.shape == (60, 100, 3) and crop[0, 0, 0] == 50


def test_the_best_view_kept_for_the_thumbnail_is_the_largest_most_confident_one_the_first_on_a_tie():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    # area x confidence: 360, 800, 810, 720, 810 (a tie with the 3rd, which stays)
    for i, (size, conf) in enumerate([(20, 0.9), (40, 0.5), (30, 0.9), (40, 0.45), (30, 0.9)]):
        image = np.full((H, W, 3), 10 * (i + 1), np.uint8)
        det = Detections(np.array([[100, 100, 100 + size, 100 + size]], np.float32), np.array([conf], np.float32),
                         np.array([0]), NAMES, tracker_id=np.array([1]))
        counter(frame(i, image=image), det)
    person = counter.active[1]
    assert person.best_crop[0, 0, 0] == 30 and person.best_crop.shape[:2] == (39, 39)  # 30 px + 15 % each side


# --- the line ----------------------------------------------------------------------------------------


def test_a_line_is_in_fractions_only_when_every_value_is_between_0_and_1():
    assert Line.parse("0,0,1,1").fractions and not Line.parse("0,0,2,1").fractions
    a, b = Line.parse("0,0,2,1").points(W, H)
    assert list(a) == [0, 0] and list(b) == [2, 1]
    a, b = Line.parse("0.5,0.25,1,0.75").points(W, H)
    assert list(a) == [160, 60] and list(b) == [320, 180]


def test_crossing_a_diagonal_line_each_way():
    line = Line.parse("10,20,110,120")  # y = x + 10, from (10, 20) to (110, 120)
    assert line.crossing(np.array([60.0, 71.0]), np.array([70.0, 69.0]), W, H) == "out"
    assert line.crossing(np.array([70.0, 69.0]), np.array([60.0, 71.0]), W, H) == "in"
    assert line.side(np.array([60.0, 71.0]), W, H) == pytest.approx(100.0)  # the cross product itself


# A horizontal line from (0, 10) to (100, 10): "in" is downwards.
FLAT = Line.parse("0,10,100,10")


@pytest.mark.parametrize(("before", "after", "direction"), [
    ((50, 10.005), (50, 9), "out"),  # starting a hair below the line
    ((50, 9), (50, 10.005), "in"),  # ending a hair below it
    ((50, 10), (50, 20), None),  # starting on it: the people stage keeps the last centre off it
    ((50, 0), (50, 10), None),  # ending on it
    ((0, 0), (0, 20), "in"),  # through its first end
    ((100, 20), (100, 0), "out"),  # through its last end
    ((-0.005, 20), (-0.005, 0), None),  # a hair beyond its first end
    ((100.005, 0), (100.005, 20), None),  # a hair beyond its last end
])
def test_crossings_at_a_hair_from_the_line_and_its_ends(before, after, direction):
    assert FLAT.crossing(np.array(before, float), np.array(after, float), W, H) == direction


def test_a_person_walking_across_a_vertical_line_is_counted_by_the_centre_of_the_box():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, line=Line.parse("160,0,160,240")))
    for i, x in enumerate([100, 140, 180, 220]):  # the box centre crosses x = 160 between frames 1 and 2
        counter(frame(i), faces((x, 120, 0, 0.9), ids=[4]))
    assert counter.active[4].crossings == [("out", 2)]  # walking right across a line drawn downwards


# --- people: verdicts, share, confidence ------------------------------------------------------------


def test_share_and_confidence_are_of_the_frames_that_agree_with_the_verdict():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    for i, (cls, conf) in enumerate([(1, 0.9), (1, 0.7), (0, 0.3), (1, 0.8)]):
        counter(frame(i), faces((100, 100, cls, conf), ids=[2]))
    person = counter.active[2]
    assert counter.verdict_name(person) == "without_mask"
    assert person.share() == pytest.approx(0.75) and person.confidence() == pytest.approx(0.8)
    assert person.weights[1] == pytest.approx(2.4) and person.counts == {1: 3, 0: 1}


def test_a_person_without_a_verdict_has_no_share_and_no_confidence():
    pending = Person(1, "door.mp4", 0, 0.0, "t")
    assert pending.share() == 0.0 and pending.confidence() == 0.0
    pending.frames = 3
    assert pending.share() == 0.0 and pending.confidence() == 0.0


def test_a_tie_in_the_vote_goes_to_the_lower_class_id():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2))
    counter(frame(0), faces((100, 100, 2, 0.5), ids=[1]))
    counter(frame(1), faces((100, 100, 1, 0.5), ids=[1]))
    assert counter.verdict_name(counter.active[1]) == "without_mask"


def test_a_track_id_of_0_is_a_person_and_minus_1_is_not():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    counter(frame(0), faces((100, 100, 0, 0.9), (200, 100, 1, 0.9), ids=[0, -1]))
    assert list(counter.active) == [0]


def test_a_new_person_records_where_and_when_they_were_first_seen():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    counter(frame(3), faces((100, 100, 0, 0.9), ids=[9]))
    person = counter.active[9]
    assert (person.source, person.first_frame, person.first_time) == ("door.mp4", 3, 0.75)
    assert person.first_seen_at[:2] == "20" and "T" in person.first_seen_at


def test_a_person_is_lost_only_once_unseen_for_longer_than_lost_seconds():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, lost_seconds=1.0))
    counter(frame(2), faces((100, 100, 0, 0.9), ids=[1]))  # 0.5 s
    counter(frame(6), faces(ids=[]))  # 1.5 s: exactly 1.0 s unseen, still here
    assert counter.take_left() == []
    counter(frame(7), faces(ids=[]))  # 1.75 s
    assert [p.track_id for p in counter.take_left()] == [1]


def test_short_tracks_are_counted_and_people_who_left_get_a_thumbnail_of_their_best_view():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=3))
    for i in range(3):
        counter(frame(i), faces((100, 100, 0, 0.9), (200, 100, 1, 0.9), (250, 100, 1, 0.9), ids=[1, 2, 3][: 3 - 2 * (i > 0)]))
    counter.finish_all()
    assert counter.short_tracks == 2
    (person,) = counter.take_left()
    assert decoded(person.thumb).shape[:2] == (52, 52)  # the 40x40 face and 15 % on each side


def test_a_folder_of_images_is_one_view_on_a_clock_of_25_images_a_second(tmp_path):
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, lost_seconds=10))
    for i in range(3):
        image = Frame(np.zeros((H, W, 3), np.uint8), str(tmp_path / f"{i}.jpg"), str(i), "image", position=f"{i + 1}/3")
        counter(image, faces((100, 100, 0, 0.9), ids=[1]))
    person = counter.active[1]
    assert (person.first_frame, person.last_frame, person.frames) == (0, 2, 3)
    assert (person.first_time, person.last_time) == (0.0, pytest.approx(2 / 25))
    other = Frame(np.zeros((H, W, 3), np.uint8), str(tmp_path / "other" / "0.jpg"), "0", "image", position="1/1")
    counter(other, faces((100, 100, 0, 0.9), ids=[5]))  # another folder: everyone before has left
    assert [p.track_id for p in counter.take_left()] == [1]
    assert (counter.active[5].first_frame, counter.active[5].first_time) == (0, 0.0)


# --- alerts ----------------------------------------------------------------------------------------


def test_an_alert_carries_the_person_the_frame_the_box_and_the_confidence():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, alert_classes=("without_mask",), alert_after=0.0))
    shot = frame(0)
    counter(shot, faces((100, 100, 1, 0.8), ids=[3]))
    (alert,) = counter.take_alerts()
    assert alert.person.track_id == 3 and alert.frame is shot and alert.confidence == pytest.approx(0.8)
    assert alert.box.tolist() == [80, 80, 120, 120] and alert.time[:2] == "20"
    assert counter.alerted == [alert] and counter.take_alerts() == []


def test_an_unknown_alert_class_lists_the_models_classes():
    from maskdet.errors import UserError

    with pytest.raises(UserError, match="the model's classes are with_mask, without_mask, mask_weared_incorrect$"):
        PeopleCounter(NAMES, MonitorSettings(alert_classes=("masked",)))


# --- what the summary and the window say ------------------------------------------------------------


def test_with_nobody_seen_the_summary_says_none_and_no_share():
    counter = PeopleCounter(NAMES)
    assert counter.lines() == ["people: 0 seen (none); 0 in view at the end"]
    assert counter.compliance() is None and counter.compliance([]) is None
    assert [t for t, _ in counter.overlay_lines()] == ["in view: 0", "people seen: 0", "  with_mask: 0", "  without_mask: 0",
                                                       "  mask_weared_incorrect: 0"]


def test_compliance_of_a_given_list_of_people_and_of_nobody_masked():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    counter(frame(0), faces((100, 100, 1, 0.9), (200, 100, 0, 0.9), ids=[1, 2]))
    unmasked = [counter.active[1]]
    assert counter.compliance(unmasked) == 0.0 and counter.compliance() == 0.5
    assert counter.by_verdict(unmasked) == {"without_mask": 1}
    assert counter.verdict_name(Person(7, "s", 0, 0.0, "t")) == "pending"


def test_in_view_counts_tracks_from_min_frames_on():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=2))
    counter(frame(0), faces((100, 100, 0, 0.9), ids=[1]))
    assert counter.in_view() == 0
    counter(frame(1), faces((100, 100, 0, 0.9), ids=[1]))
    assert counter.in_view() == 1


def test_the_line_summary_counts_every_crossing_and_says_who_crossed():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, line=FLAT))
    for i, y in enumerate([0, 20, 0, 20]):  # in, out, in
        counter(frame(i), faces((50, y, 1, 0.9), (90, 40, 0, 0.9), ids=[1, 2]))
    assert counter.line_counts() == {"in": {"without_mask": 2}, "out": {"without_mask": 1}}
    assert counter.lines()[1] == "line: in 2 (2 without_mask); out 1 (1 without_mask)"
    quiet = PeopleCounter(NAMES, MonitorSettings(min_frames=1, line=FLAT))
    assert quiet.lines()[1] == "line: in 0; out 0"


@pytest.mark.parametrize("big_first", [True, False])
@pytest.mark.parametrize(("big", "small"), [((280, 200, 320, 240), (0, 0, 30, 30)), ((0, 0, 40, 40), (290, 210, 320, 240))])
def test_the_best_view_is_judged_by_area_wherever_the_face_is_in_the_frame(big, small, big_first):
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1))
    image = np.zeros((H, W, 3), np.uint8)
    image[big[1]:big[3], big[0]:big[2]] = 200
    image[small[1]:small[3], small[0]:small[2]] = 50
    for i, box in enumerate([big, small] if big_first else [small, big]):
        det = Detections(np.array([box], np.float32), np.array([0.9], np.float32), np.array([0]), NAMES, tracker_id=np.array([1]))
        counter(frame(i, image=image), det)
    crop = counter.active[1].best_crop
    assert crop.max() == 200 and crop.shape[:2] == (46, 46)  # the 40x40 face and 6 px more on each side (cut at the frame)


def test_a_line_summary_lists_each_class_that_crossed():
    counter = PeopleCounter(NAMES, MonitorSettings(min_frames=1, line=FLAT))
    for i, y in enumerate([0, 20]):
        counter(frame(i), faces((30, y, 0, 0.9), (70, y, 1, 0.9), ids=[1, 2]))
    assert counter.lines()[1] == "line: in 2 (1 with_mask, 1 without_mask); out 0"
