"""maskdet.config: data.yaml, class lists and --map.

Paths in data.yaml are relative to the yaml (not to where a script is started); names may be a
list or an id mapping; every problem is a UserError naming the file (and line for bad YAML).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdet.config import (
    class_list_mismatch,
    labels_dir_for,
    load_dataset_config,
    parse_class_map,
    parse_names,
    read_class_list,
)
from maskdet.errors import UserError

NAMES = ("with_mask", "without_mask", "mask_weared_incorrect")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- load_dataset_config -----------------------------------------------------------------------


def test_paths_are_relative_to_the_yaml_not_the_working_folder(tmp_path, monkeypatch, make_data_yaml):
    yaml = make_data_yaml(tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    config = load_dataset_config("project/data.yaml")
    root = (tmp_path / "project" / "data").resolve()
    assert config.yaml_path == (tmp_path / "project" / "data.yaml").resolve() == yaml.resolve()
    assert config.root == root
    assert config.split_images == {s: root / s / "images" for s in ("train", "val", "test")}
    assert config.labels_dir("val") == root / "val" / "labels"
    assert config.names == NAMES
    assert config.class_ids == {"with_mask": 0, "without_mask": 1, "mask_weared_incorrect": 2}


def test_missing_path_means_the_yaml_folder(tmp_path):
    config = load_dataset_config(write(tmp_path, "train: imgs/train\nnames: [a]\n"))
    assert config.root == tmp_path.resolve()
    assert config.images_dir("train") == tmp_path.resolve() / "imgs" / "train"


def test_absolute_paths_are_kept(tmp_path):
    config = load_dataset_config(write(tmp_path, f"path: {tmp_path / 'ds'}\ntrain: /elsewhere/images\nnames: [a]\n"))
    assert config.root == tmp_path / "ds"
    assert config.split_images["train"] == Path("/elsewhere/images")


def test_test_split_is_optional(tmp_path):
    config = load_dataset_config(write(tmp_path, "path: d\ntrain: train/images\nval: val/images\nnames: [a, b]\n"))
    assert set(config.split_images) == {"train", "val"}


def test_split_given_as_a_list_is_refused(tmp_path):
    with pytest.raises(UserError, match="'train' must be one folder path"):
        load_dataset_config(write(tmp_path, "train: [a/images, b/images]\nnames: [a]\n"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("path: data\ntrain: x\n", "no 'names'"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "expected a mapping"),
        ("names: 5\n", "'names' must be a list or a mapping"),
        ("names: []\n", "lists no classes"),
        ("names: [a, b, a]\n", "class names repeat"),
        ("names: {0: a, 2: b}\n", "must be 0..1, got [0, 2]"),
        ("names: {x: a}\n", "must be integers"),
    ],
)
def test_bad_data_yaml_is_a_user_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_dataset_config(path)
    assert message in str(err.value)
    assert str(path.resolve()) in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "path: data\ntrain: train/images\nnames: [a, b\nval: v\n")
    with pytest.raises(UserError, match="not valid YAML") as err:
        load_dataset_config(path)
    assert err.value.line is not None and 3 <= err.value.line <= 5
    assert str(err.value).startswith(f"{path.resolve()}:{err.value.line}: ")


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="file not found") as err:
        load_dataset_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value)


def test_non_utf8_yaml_is_a_user_error(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_bytes(b"names: [\xff]\n")
    with pytest.raises(UserError, match="cannot read"):
        load_dataset_config(path)


# --- parse_names -------------------------------------------------------------------------------


def test_names_as_list_or_mapping_give_the_same_classes():
    where = Path("d.yaml")
    assert parse_names(list(NAMES), where) == NAMES
    assert parse_names({2: NAMES[2], 0: NAMES[0], 1: NAMES[1]}, where) == NAMES
    assert parse_names({"0": "a", "1": "b"}, where) == ("a", "b")


@pytest.mark.parametrize(("text", "line", "message"), [
    ("path: 7\n", 2, "'path' must be a folder path, got '7'"),
    ("path: [1]\n", 2, "'path' must be a folder path, got '[1]'"),
    ("path: yes\n", 2, "'path' must be a folder path, got 'True'"),
    ("names: {0.5: a}\n", 1, "class ids under 'names' must be integers, got 0.5"),
    ("names: {0: a, '0': b}\n", 1, "a class id is given twice under 'names'"),
    ("train: [a, b]\n", 2, "'train' must be one folder path"),
])
def test_a_data_yaml_value_of_the_wrong_kind_is_a_user_error_naming_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "data.yaml"
    names = "" if text.startswith("names") else "names: [a, b]\n"
    path.write_text(names + text)
    with pytest.raises(UserError) as err:
        load_dataset_config(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value), str(err.value)


# --- labels_dir_for ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, labels",
    [
        ("data/train/images", "data/train/labels"),
        ("/abs/images/train/images", "/abs/images/train/labels"),  # the last 'images' is the one
        ("data/images/train", "data/labels/train"),  # the YOLOv5 layout
        ("photos", "photos"),  # no 'images' folder: Ultralytics reads the .txt beside the image
        ("/abs/train", "/abs/train"),
    ],
)
def test_labels_live_beside_images_as_ultralytics_expects(images, labels):
    assert labels_dir_for(Path(images)) == Path(labels)


@pytest.mark.parametrize("images", ["/d/train/images", "/d/images/train", "/d/train", "/d/photos/val", "/images/x/images"])
def test_labels_dir_agrees_with_ultralytics_own_rule(images):
    from ultralytics.data.utils import img2label_paths

    (expected,) = img2label_paths([f"{images}/a.png"])
    assert labels_dir_for(Path(images)) / "a.txt" == Path(expected)


# --- class lists -------------------------------------------------------------------------------


def test_read_class_list_ignores_blank_lines_and_spaces(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("with_mask\n\n  without_mask  \r\nmask_weared_incorrect")
    assert read_class_list(path) == list(NAMES)


def test_class_list_equal_to_data_yaml_is_fine():
    assert class_list_mismatch(list(NAMES), NAMES) is None


def test_class_list_prefix_is_fine_every_id_means_the_same():
    assert class_list_mismatch(["with_mask", "without_mask"], NAMES) is None


def test_class_list_in_another_order_names_the_first_wrong_id():
    assert class_list_mismatch(["without_mask", "with_mask", "mask_weared_incorrect"], NAMES) == (
        "id 0 is 'without_mask' here but 'with_mask' in data.yaml")


def test_class_list_with_extra_names_is_a_mismatch():
    assert class_list_mismatch([*NAMES, "face_shield"], NAMES) == "extra classes not in data.yaml: ['face_shield']"


# --- --map -------------------------------------------------------------------------------------


def test_parse_class_map_reads_old_new_pairs():
    assert parse_class_map(["mask=with_mask", " no-mask = without_mask "]) == {"mask": "with_mask", "no-mask": "without_mask"}
    assert parse_class_map(None) == {} and parse_class_map([]) == {}


def test_later_map_of_the_same_name_wins():
    assert parse_class_map(["a=b", "a=c"]) == {"a": "c"}


@pytest.mark.parametrize("pair", ["mask", "=with_mask", "mask=", " = "])
def test_parse_class_map_refuses_incomplete_pairs(pair):
    with pytest.raises(UserError, match="--map expects OLD=NEW"):
        parse_class_map([pair])


# --- YAML from outside: bounded before it is parsed ----------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)
) + "names: *i\ntrain: train/images\nval: val/images\n"


def test_an_alias_bomb_as_names_is_refused_at_once_in_one_short_line(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text(ALIAS_BOMB)  # 10^9 names once expanded
    with pytest.raises(UserError, match="anchors and aliases") as err:
        load_dataset_config(path)
    assert len(str(err.value)) < 300 and str(path) in str(err.value)


def test_a_huge_yaml_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("names: [a, b]\n# " + "x" * 2_000_000 + "\n")
    with pytest.raises(UserError, match="too large for a dataset description"):
        load_dataset_config(path)


def test_class_names_must_be_plain_text(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("names: [[a, b], c]\n")
    with pytest.raises(UserError, match="plain text"):
        load_dataset_config(path)


def test_a_long_error_is_cut_to_one_readable_line(capsys):
    from maskdet.errors import MAX_ERROR_CHARS, run_cli

    def main(argv):
        raise UserError("class names repeat: " + "['a', 'a'] " * 100_000)

    assert run_cli(main) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < MAX_ERROR_CHARS + 100, len(err)
