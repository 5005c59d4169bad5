"""The review order: closest calls first, and label.py's list of photos rearranged by it."""

from __future__ import annotations

import pytest

from maskdet.data.review import ReviewItem, apply_order, box_doubt, read_review_order, review_order, write_review_order
from maskdet.errors import UserError


@pytest.mark.parametrize(("conf", "doubt"), [(0.35, 1.0), (0.0, 0.0), (1.0, 0.0), (0.175, 0.5), (0.675, 0.5)])
def test_a_box_is_most_doubtful_at_the_threshold_and_sure_at_either_end(conf, doubt):
    assert box_doubt(conf, 0.35) == pytest.approx(doubt)


def test_most_doubtful_first_ties_by_name():
    items = [ReviewItem("c.png", 0.2, 1), ReviewItem("b.png", 0.9, 2), ReviewItem("a.png", 0.2, 0)]
    assert [i.photo for i in review_order(items)] == ["b.png", "a.png", "c.png"]


def test_the_order_file_round_trips_and_ignores_comments(tmp_path):
    path = tmp_path / "review.txt"
    write_review_order(path, [ReviewItem("x y.png", 0.1, 0), ReviewItem("sub/z.jpg", 0.8, 3, "with_mask 0.40")])
    assert read_review_order(path) == ["sub/z.jpg", "x y.png"]
    assert path.read_text().startswith("# review order")


def test_photo_names_with_a_hash_or_a_leading_space_come_back_as_written(tmp_path):
    """A '#' inside a name is not a comment (IMG#7.png); a row prelabel.py wrote gives its photo exactly."""
    path = tmp_path / "review.txt"
    items = [ReviewItem("IMG#7.png", 0.9, 1, "with_mask 0.30", "0" * 32), ReviewItem(" x.png", 0.5, 0)]
    write_review_order(path, items)
    assert read_review_order(path) == ["IMG#7.png", " x.png"]
    assert [ReviewItem.parse(item.line()) for item in items] == items  # what tells a model's label from a person's
    with path.open("a") as f:
        f.write("by hand.png   # a note\n#all comment\nIMG#8.png\n")
    assert read_review_order(path)[2:] == ["by hand.png", "IMG#8.png"]


def test_a_missing_order_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="review order file not found"):
        read_review_order(tmp_path / "nope.txt")


def test_listed_photos_come_first_in_the_listed_order_the_rest_after(tmp_path):
    images = [str(tmp_path / n) for n in ("a.png", "b.png", "c.png", "d.png")]
    order = ["c.png", "a.png", "gone.png"]
    assert apply_order(images, tmp_path, order) == [images[2], images[0], images[1], images[3]]
