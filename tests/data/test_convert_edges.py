"""Importing labels at the edges: errors that name their file, box counts, a size note only when the XML
gives one, and every file converted after a bad one (found by mutation testing, bench/mutation.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskdet.config import load_dataset_config
from maskdet.data.convert import convert_voc_folder, image_size, import_yolo_dataset, refuse_overwrite
from maskdet.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def error_of(call) -> UserError:
    with pytest.raises(UserError) as err:
        call()
    return err.value


@pytest.fixture
def config():
    return load_dataset_config(ROOT / "data.yaml")


def image(path: Path, w: int = 40, h: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
    return path


def voc(path: Path, *objects: tuple[str, int, int, int, int], size: tuple[int, int] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height></size>" if size else ""
    objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
                   f"</bndbox></object>" for n, a, b, c, d in objects)
    path.write_text(f"<annotation>{size_xml}{objs}</annotation>")
    return path


def test_a_folder_without_xml_is_an_error_naming_it(tmp_path, config):
    err = error_of(lambda: convert_voc_folder(tmp_path, tmp_path, tmp_path / "out", config))
    assert err.path == tmp_path and str(err) == f"{tmp_path}: no .xml files found"


def test_an_unreadable_image_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not a jpeg")
    err = error_of(lambda: image_size(bad))
    assert err.path == bad and str(err).startswith(f"{bad}: cannot read image: ")


def test_refusing_to_overwrite_says_how_many_the_first_and_what_to_do(tmp_path):
    (tmp_path / "a.txt").write_text("")
    err = error_of(lambda: refuse_overwrite([tmp_path / "a.txt", tmp_path / "b.txt"], force=False))
    assert str(err) == f"1 output files already exist (first: {tmp_path / 'a.txt'}); nothing was written. Pass --force to overwrite them"
    refuse_overwrite([tmp_path / "a.txt"], force=True)


def test_every_xml_after_an_unusable_one_is_converted_and_a_size_note_needs_both_sides(tmp_path, config):
    xml, images, out = tmp_path / "xml", tmp_path / "img", tmp_path / "out"
    voc(xml / "a.xml", ("with_mask", 1, 1, 20, 20))  # no image a.*
    voc(xml / "b.xml", ("with_mask", 1, 1, 20, 20), size=(40, 0))  # half a size: no note
    voc(xml / "c.xml", ("without_mask", 1, 1, 20, 20), size=(80, 60))  # a wrong size: a note
    image(images / "b.jpg")
    image(images / "c.jpg")
    echoed: list[str] = []
    report = convert_voc_folder(xml, images, out, config, echo=echoed.append)
    assert report.files_written == 2 and len(report.skipped) == 1
    assert [line for line in echoed if line.startswith("note:")] == [
        f"note: {xml / 'c.xml'}: <size> says 80x60, the image is 40x30; using the image"]
    assert report.summary_lines(out)[0] == f"wrote 2 label files to {out}"
    assert report.summary_lines(out)[-1] == "skipped 1 files (listed above)"


def yolo_export(root: Path, yaml: str = "train: train/images\nnames: ['mask', 'no-mask']\n") -> Path:
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml)
    return root / "data.yaml"


def test_importing_an_export_without_images_or_splits_names_its_yaml(tmp_path, config):
    empty = yolo_export(tmp_path / "a")
    (tmp_path / "a" / "train" / "images").mkdir(parents=True)
    (tmp_path / "a" / "train" / "images" / "notes.txt").write_text("")
    err = error_of(lambda: import_yolo_dataset(empty, tmp_path / "out", config))
    assert err.path == empty and str(err) == f"{empty}: no images found in its split folders"
    no_splits = yolo_export(tmp_path / "b", "names: ['mask']\n")
    err = error_of(lambda: import_yolo_dataset(no_splits, tmp_path / "out", config))
    assert err.path == no_splits and str(err) == f"{no_splits}: names no train/val/test image folders"


def test_a_name_repeated_across_splits_names_the_yaml(tmp_path, config):
    src = yolo_export(tmp_path / "a", "train: train/images\nval: valid/images\nnames: ['mask']\n")
    image(tmp_path / "a" / "train" / "images" / "p.jpg")
    image(tmp_path / "a" / "valid" / "images" / "p.jpg")
    err = error_of(lambda: import_yolo_dataset(src, tmp_path / "out", config))
    assert err.path == src and str(err).endswith("import each split with its own --prefix")


def test_an_import_counts_each_box_read_and_written_and_where_unknown_ones_were(tmp_path, config):
    src = yolo_export(tmp_path / "a", "train: ./train/images\nnames: ['mask', 'hat']\n")
    image(tmp_path / "a" / "train" / "images" / "p.jpg")
    labels = tmp_path / "a" / "train" / "labels" / "p.txt"
    labels.parent.mkdir(parents=True)
    labels.write_text("0 0.5 0.5 0.2 0.2\n0 0.25 0.25 0.1 0.1\n1 0.5 0.5 0.4 0.4\n")
    report = import_yolo_dataset(src, tmp_path / "out", config, {"mask": "with_mask"}, echo=lambda _: None)
    s = report.stats
    assert (s.boxes_in, s.boxes_out, report.images_copied) == (3, 2, 1)
    assert s.unknown_files == {"hat": [str(labels)]}
    assert report.summary_lines(tmp_path / "out")[0] == f"wrote 1 label files to {tmp_path / 'out'} and copied 1 images"
    assert sorted(p.name for p in (tmp_path / "out" / "labels").iterdir()) == ["classes.txt", "p.txt"]  # no prefix unless asked


def test_a_class_already_named_as_ours_is_imported_without_a_map(config):
    from maskdet.data.convert import class_id_remap

    assert class_id_remap(("hat", "without_mask", "with_mask"), config, {}) == {0: None, 1: 1, 2: 0}


def test_an_export_with_only_a_val_split_is_imported(tmp_path, config):
    src = yolo_export(tmp_path / "a", "val: valid/images\nnames: ['with_mask']\n")
    image(tmp_path / "a" / "valid" / "images" / "v.jpg")
    report = import_yolo_dataset(src, tmp_path / "out", config, echo=lambda _: None)
    assert report.images_copied == 1
