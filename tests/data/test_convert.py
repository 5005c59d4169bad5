"""maskdet.data.convert and its scripts: labeling/voc2yolo.py and labeling/import_yolo.py.

Both write labels atomically, renumber classes by name onto data.yaml (with --map renames), report
what they could not import, write classes.txt, and never overwrite without --force.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from maskdet.cli import import_yolo as import_yolo_cli
from maskdet.cli import voc2yolo as voc2yolo_cli
from maskdet.config import load_dataset_config
from maskdet.data.convert import convert_voc_folder, import_yolo_dataset
from maskdet.errors import UserError

NAMES = ["with_mask", "without_mask", "mask_weared_incorrect"]


def ctrl_c_at_call(monkeypatch: pytest.MonkeyPatch, name: str, call: int):
    """Ctrl-C arriving as maskdet.data.convert's `name` (a writer) is called for the `call`-th time, before it
    writes; the earlier calls write. Returns what puts the real writer back (for a rerun in the same test)."""
    import maskdet.data.convert as converting

    real, calls = getattr(converting, name), []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == call:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(converting, name, interrupted)
    return lambda: monkeypatch.setattr(converting, name, real)


# --- voc2yolo ----------------------------------------------------------------------------------


@pytest.fixture
def voc(tmp_path, make_image, make_voc, data_yaml):
    """Three photos and their VOC files, as labelImg or Kaggle leave them."""
    images, xml = tmp_path / "images", tmp_path / "xml"
    make_image(images / "a.png", 100, 50)
    make_image(images / "b.jpg", 64, 64)
    make_image(images / "c.png", 80, 40)
    make_image(images / "unlabelled.png", 10, 10)
    # a.xml's <filename> is stale (the photo was renamed); its <size> is wrong too.
    make_voc(xml / "a.xml", [("with_mask", 10, 5, 30, 25), ("without_mask", 90, 40, 101, 51)], filename="IMG_0001.jpg", size=(200, 100))
    make_voc(xml / "b.xml", [("mask_weared_incorrect", 0, 0, 32, 64)], size=(64, 64))
    make_voc(xml / "c.xml", [], size=(80, 40))  # a background image: no faces
    return SimpleNamespace(images=images, xml=xml, out=tmp_path / "labels", config=load_dataset_config(data_yaml), yaml=data_yaml)


def convert(voc, **kwargs):
    echoed: list[str] = []
    report = convert_voc_folder(voc.xml, voc.images, voc.out, voc.config, echo=echoed.append, **kwargs)
    return report, echoed


def test_voc_files_are_matched_to_images_by_stem_and_normalised_by_the_real_size(voc, tools):
    report, echoed = convert(voc)
    rows = tools.read_label_lines(voc.out / "a.txt")
    # a.png is 100x50 whatever <filename> and <size> say; the second box is clipped at the corner.
    assert rows == [pytest.approx([0, 0.2, 0.3, 0.2, 0.4], abs=1e-6), pytest.approx([1, 0.95, 0.9, 0.1, 0.2], abs=1e-6)]
    assert tools.read_label_lines(voc.out / "b.txt") == [pytest.approx([2, 0.25, 0.5, 0.5, 1.0], abs=1e-6)]
    assert any("<size> says 200x100, the image is 100x50" in line for line in echoed)
    assert report.files_written == 3 and report.skipped == []


def test_a_phone_photo_stored_sideways_is_normalised_by_its_upright_size(voc, make_voc, tools):
    """EXIF orientation 6: stored 50x100, shown (and labelled in labelImg, and trained on) upright, 100x50."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    (voc.images / "a.png").unlink()
    Image.new("RGB", (50, 100), (90, 90, 90)).save(voc.images / "a.jpg", exif=exif.tobytes())
    make_voc(voc.xml / "a.xml", [("with_mask", 10, 5, 30, 25)], size=(100, 50))
    _, echoed = convert(voc)
    assert tools.read_label_lines(voc.out / "a.txt") == [pytest.approx([0, 0.2, 0.3, 0.2, 0.4], abs=1e-6)]
    assert not any("<size> says" in line for line in echoed)


def test_annotation_without_objects_gives_an_empty_label_file(voc):
    convert(voc)
    assert (voc.out / "c.txt").read_text() == ""


def test_images_without_xml_get_no_label_file(voc):
    convert(voc)
    assert not (voc.out / "unlabelled.txt").exists()


def test_classes_txt_is_written_in_data_yaml_order(voc):
    convert(voc)
    assert (voc.out / "classes.txt").read_text() == "with_mask\nwithout_mask\nmask_weared_incorrect\n"


def test_clipped_boxes_are_counted_and_reported_with_file_and_line(voc, tools):
    report, echoed = convert(voc)
    assert report.stats.clipped == 1 and report.stats.dropped == 0
    line = tools.bndbox_line((voc.xml / "a.xml").read_text(), 1)
    assert f"{voc.xml / 'a.xml'}:{line}: clipped box 'without_mask' to the 100x50 image" in echoed
    summary = report.summary_lines(voc.out)
    assert summary[0] == f"wrote 3 label files to {voc.out}"
    assert summary[1] == "boxes: 3 written of 3 read; 1 clipped to the image edge; 0 dropped (unreadable, empty, inverted or outside)"


def test_inverted_box_is_dropped_and_reported(voc, make_voc):
    make_voc(voc.xml / "b.xml", [("with_mask", 40, 10, 20, 30), ("with_mask", 1, 1, 9, 9)])
    report, echoed = convert(voc)
    assert report.stats.dropped == 1
    assert any("b.xml" in e and "dropped empty or inverted box 'with_mask'" in e for e in echoed)
    assert len((voc.out / "b.txt").read_text().splitlines()) == 1


def test_xml_without_image_is_skipped_and_reported_the_rest_converted(voc, make_voc):
    make_voc(voc.xml / "lost.xml", [("with_mask", 1, 1, 5, 5)])
    report, echoed = convert(voc)
    assert report.skipped == [f"{voc.xml / 'lost.xml'}: no image named lost.* in {voc.images}"]
    assert f"skipped: {report.skipped[0]}" in echoed
    assert not (voc.out / "lost.txt").exists()
    assert {p.name for p in voc.out.iterdir()} == {"a.txt", "b.txt", "c.txt", "classes.txt"}


def test_of_two_photos_sharing_a_stem_the_one_filename_names_is_converted_and_the_other_named(voc, make_image, make_voc):
    # b.jpg (64x64) and b.png (128x32): a box's fractions depend on which photo's size they are taken of.
    make_image(voc.images / "b.png", 128, 32)
    make_voc(voc.xml / "b.xml", [("with_mask", 0, 0, 32, 16)], filename="b.png")
    report, echoed = convert(voc)
    assert report.skipped == []
    assert (voc.out / "b.txt").read_text() == "0 0.125000 0.250000 0.250000 0.500000\n"  # of 128x32, not 64x64
    assert any(e.startswith(f"note: {voc.xml / 'b.xml'}: b.jpg shares the name of b.png") for e in echoed)


@pytest.mark.parametrize("filename", ["IMG_0001.jpg", None])
def test_of_two_photos_sharing_a_stem_neither_named_by_filename_the_xml_is_skipped_naming_both(voc, make_image, make_voc,
                                                                                               filename):
    make_image(voc.images / "b.png", 128, 32)
    xml = make_voc(voc.xml / "b.xml", [("with_mask", 0, 0, 32, 16)], filename=filename or "b.gif")
    if filename is None:
        xml.write_text(xml.read_text().replace("  <filename>b.gif</filename>\n", ""))
    report, echoed = convert(voc)
    assert not (voc.out / "b.txt").exists() and report.exit_status == 1
    assert len(report.skipped) == 1 and report.skipped[0].startswith(f"{xml}: 2 photos share its name, b.jpg and b.png")
    assert f"skipped: {report.skipped[0]}" in echoed
    assert {p.name for p in voc.out.iterdir()} == {"a.txt", "c.txt", "classes.txt"}, "the other XML files are converted"


def test_a_box_that_cannot_be_read_is_named_counted_and_the_exit_status_is_1(voc, make_voc, tools):
    xml = make_voc(voc.xml / "b.xml", [("with_mask", 0, 0, 32, 32), ("without_mask", "nan", 1, 9, 9)])
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"skipped box: {xml}:" in proc.stdout and "<xmin> is not a finite number: 'nan'" in proc.stdout
    assert len(tools.read_label_lines(voc.out / "b.txt")) == 1  # the readable face kept, as import_yolo.py does
    assert ("NOT imported: 1 boxes that could not be read (listed above): their faces are missing from the labels; fix "
            "the XML and convert again with --force") in proc.stdout.splitlines()


def test_a_named_pipe_named_like_an_xml_is_skipped_not_waited_on(voc, make_image, tools):
    make_image(voc.images / "d.png", 20, 20)
    fifo = voc.xml / "d.xml"
    os.mkfifo(fifo)
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))  # with a time limit: it used to wait for ever
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"skipped: {fifo}: cannot read: not a regular file (a named pipe): it is not read" in proc.stdout, proc.stdout
    assert {p.name for p in voc.out.iterdir()} == {"a.txt", "b.txt", "c.txt", "classes.txt"}


def test_ctrl_c_keeps_the_labels_written_writes_classes_txt_and_says_how_far_it_got(voc, monkeypatch):
    restore = ctrl_c_at_call(monkeypatch, "atomic_write_text", 2)
    echoed: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        convert_voc_folder(voc.xml, voc.images, voc.out, voc.config, echo=echoed.append)
    restore()
    assert {p.name for p in voc.out.iterdir()} == {"a.txt", "classes.txt"}
    assert (voc.out / "classes.txt").read_text().splitlines() == NAMES, "labelImg reads the ids of a.txt with it"
    assert "interrupted after 1 label files: each is complete; the same command with --force converts the rest" in echoed[-4]
    assert echoed[-3] == f"wrote 1 label files to {voc.out}"
    report, _ = convert(voc, force=True)
    assert report.files_written == 3


def test_a_photo_of_over_100_megapixels_is_converted_without_pil_s_raw_warning(voc, make_voc, tools):
    from synthetic import huge_png

    huge_png(voc.images / "b.png", 11_000, 11_000)  # 121 megapixels: PIL warns from 89
    (voc.images / "b.jpg").unlink()
    make_voc(voc.xml / "b.xml", [("with_mask", 0, 0, 1100, 1100)], filename="b.png")
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DecompressionBombWarning" not in proc.stderr and proc.stderr == "", proc.stderr
    assert (voc.out / "b.txt").read_text() == "0 0.050000 0.050000 0.100000 0.100000\n"


def test_malformed_xml_is_skipped_with_file_and_line_the_rest_converted(voc, make_image):
    make_image(voc.images / "broken.png")
    (voc.xml / "broken.xml").write_text("<annotation>\n  <object>\n    <name>with_mask</name>\n</annotation>\n")
    report, _ = convert(voc)
    assert len(report.skipped) == 1
    assert report.skipped[0].startswith(f"{voc.xml / 'broken.xml'}:4: not valid XML")
    assert (voc.out / "a.txt").exists() and not (voc.out / "broken.txt").exists()


def test_an_xml_file_too_big_to_be_an_annotation_is_skipped_unread_the_rest_converted(voc, make_image, tools):
    make_image(voc.images / "huge.png")
    huge = tools.sparse_file(voc.xml / "huge.xml", 1 << 40)
    report, _ = convert(voc)
    assert report.skipped == [f"{huge}: cannot read: 1,099,511,627,776 bytes, over the 16,777,216-byte limit "
                              "for a file of this kind"]
    assert (voc.out / "a.txt").exists() and not (voc.out / "huge.txt").exists()


def test_map_renames_classes(voc, make_voc, tools):
    make_voc(voc.xml / "b.xml", [("mask", 0, 0, 32, 32), ("no-mask", 32, 32, 64, 64)])
    report, _ = convert(voc, rename={"mask": "with_mask", "no-mask": "without_mask"})
    assert [r[0] for r in tools.read_label_lines(voc.out / "b.txt")] == [0, 1]
    assert not report.stats.unknown


def test_unknown_class_is_left_out_and_counted(voc, make_voc, tools):
    make_voc(voc.xml / "b.xml", [("face", 0, 0, 32, 32), ("with_mask", 32, 32, 64, 64)])
    report, _ = convert(voc)
    assert report.stats.unknown == {"face": 1}
    assert [r[0] for r in tools.read_label_lines(voc.out / "b.txt")] == [0]
    assert report.summary_lines(voc.out)[-1] == (f"NOT imported, class not in data.yaml: 'face' x1 in {voc.xml / 'b.xml'}"
                                                 "  (map them with --map OLD=NEW)")


def test_the_unknown_class_summary_names_the_files_that_use_it(voc, make_voc, make_image):
    for stem in "bcdef":
        make_image(voc.images / f"{stem}.png", 64, 64)
        make_voc(voc.xml / f"{stem}.xml", [("face", 0, 0, 32, 32)])
    (voc.images / "b.jpg").unlink()
    report, _ = convert(voc)
    files = ", ".join(str(voc.xml / f"{stem}.xml") for stem in "bcd")
    assert report.summary_lines(voc.out)[-1] == (f"NOT imported, class not in data.yaml: 'face' x5 in {files} and 2 more files"
                                                 "  (map them with --map OLD=NEW)")


def test_an_object_without_bndbox_costs_that_box_only_not_the_photo(voc, tools):
    """One broken <object> used to discard the whole XML: the photo then went in as unlabelled, a background."""
    xml = voc.xml / "a.xml"
    text = xml.read_text()
    text = text.replace("<object>", "<object><name>with_mask</name><pose>x</pose></object>\n<object>", 1)
    xml.write_text(text)
    bad_line = next(i for i, line in enumerate(text.splitlines(), 1) if "<pose>" in line)
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    assert "Traceback" not in proc.stderr
    assert f"skipped box: {xml}:{bad_line}: <object> 'with_mask' has no <bndbox>" in proc.stdout
    assert len(tools.read_label_lines(voc.out / "a.txt")) == text.count("<bndbox>")  # every other face kept
    assert "1 dropped (unreadable, empty, inverted or outside)" in proc.stdout


def test_refuses_to_overwrite_without_force_and_writes_nothing(voc, tools):
    voc.out.mkdir()
    (voc.out / "b.txt").write_text("my own work\n")
    before = tools.snapshot(voc.out)
    with pytest.raises(UserError, match="--force") as err:
        convert(voc)
    assert str(voc.out / "b.txt") in str(err.value)
    assert tools.snapshot(voc.out) == before  # not even classes.txt or a.txt


def test_force_overwrites_existing_labels(voc):
    voc.out.mkdir()
    (voc.out / "b.txt").write_text("my own work\n")
    report, _ = convert(voc, force=True)
    assert report.files_written == 3
    assert (voc.out / "b.txt").read_text().startswith("2 ")


def test_folder_without_xml_is_an_error(voc, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .xml files found"):
        convert_voc_folder(tmp_path / "empty", voc.images, voc.out, voc.config)


def test_cli_unknown_class_exits_1_and_says_to_use_map(voc, make_voc, capsys):
    make_voc(voc.xml / "b.xml", [("mask", 0, 0, 32, 32)])
    rc = voc2yolo_cli.main(["--xml", str(voc.xml), "--images", str(voc.images), "--out", str(voc.out), "--data", str(voc.yaml)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "'mask' x1" in out and "--map" in out


def test_cli_map_option_converts_the_renamed_class(voc, make_voc, capsys, tools):
    make_voc(voc.xml / "b.xml", [("mask", 0, 0, 32, 32)])
    rc = voc2yolo_cli.main(["--xml", str(voc.xml), "--images", str(voc.images), "--out", str(voc.out),
                            "--data", str(voc.yaml), "--map", "mask=with_mask"])
    assert rc == 0
    assert "per class: with_mask 2, without_mask 1" in capsys.readouterr().out
    assert [r[0] for r in tools.read_label_lines(voc.out / "b.txt")] == [0]


def test_cli_trim_top_moves_the_top_edge_down(voc, make_voc, capsys, tools):
    make_voc(voc.xml / "b.xml", [("with_mask", 0, 0, 32, 32)])
    args = ["--xml", str(voc.xml), "--images", str(voc.images), "--out", str(voc.out), "--data", str(voc.yaml)]
    assert voc2yolo_cli.main([*args, "--trim-top", "0.25"]) == 0
    (line,) = tools.read_label_lines(voc.out / "b.txt")
    height = line[4] * 64  # b.jpg is 64 px tall: its 32 px box loses its top 8 px
    assert height == pytest.approx(24, abs=1e-3)


@pytest.mark.parametrize("value", ["-0.1", "1", "1.5"])
def test_cli_trim_top_outside_0_to_1_is_refused(voc, value, capsys):
    args = ["--xml", str(voc.xml), "--images", str(voc.images), "--out", str(voc.out), "--data", str(voc.yaml)]
    with pytest.raises(SystemExit) as exc:
        voc2yolo_cli.main([*args, "--trim-top", value])
    assert exc.value.code == 2
    assert "argument --trim-top: must be at least 0 and below 1" in capsys.readouterr().err


def test_cli_images_default_to_the_xml_folder(tmp_path, make_image, make_voc, data_yaml, tools):
    # labelImg's PascalVOC mode saves photo.xml next to photo.jpg.
    make_image(tmp_path / "photos" / "p.jpg", 40, 20)
    make_voc(tmp_path / "photos" / "p.xml", [("without_mask", 0, 0, 20, 20)])
    assert voc2yolo_cli.main(["--xml", str(tmp_path / "photos"), "--out", str(tmp_path / "photos"), "--data", str(data_yaml)]) == 0
    assert tools.read_label_lines(tmp_path / "photos" / "p.txt") == [pytest.approx([1, 0.25, 0.5, 0.5, 1.0], abs=1e-6)]


# voc2yolo.py as a user runs it: errors are one line, exit 2, never a traceback.


def voc_args(voc, *extra):
    return ["--xml", voc.xml, "--images", voc.images, "--out", voc.out, "--data", voc.yaml, *extra]


def test_script_converts_and_exits_0(voc, tools):
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"wrote 3 label files to {voc.out}" in proc.stdout
    assert sorted(p.name for p in voc.out.iterdir()) == ["a.txt", "b.txt", "c.txt", "classes.txt"]


def test_script_refuses_to_overwrite_names_the_file_and_writes_nothing(voc, tools):
    voc.out.mkdir()
    (voc.out / "a.txt").write_text("keep me\n")
    before = tools.snapshot(voc.out)
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    tools.assert_one_line_error(proc, voc.out / "a.txt", "--force", "nothing was written")
    assert tools.snapshot(voc.out) == before


def test_script_with_force_overwrites(voc, tools):
    voc.out.mkdir()
    (voc.out / "a.txt").write_text("old\n")
    proc = tools.run_script("voc2yolo.py", *voc_args(voc, "--force"))
    assert proc.returncode == 0, proc.stderr
    assert (voc.out / "a.txt").read_text().startswith("0 0.2")


def test_script_malformed_xml_is_one_line_with_file_and_line_and_exit_1(voc, tools):
    (voc.xml / "a.xml").write_text("<annotation>\n<object><name>with_mask</name>\n<bndbox></object>\n</annotation>\n")
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and skipped[0].startswith(f"skipped: {voc.xml / 'a.xml'}:3: not valid XML")
    assert (voc.out / "b.txt").exists()


@pytest.mark.parametrize("which", ["xml", "images"])
def test_script_missing_folder_is_named(voc, tools, which):
    missing = voc.xml.parent / "nowhere"
    args = {"xml": voc.xml, "images": voc.images} | {which: missing}
    proc = tools.run_script("voc2yolo.py", "--xml", args["xml"], "--images", args["images"], "--out", voc.out, "--data", voc.yaml)
    tools.assert_one_line_error(proc, missing)
    assert not voc.out.exists()


def test_script_bad_data_yaml_names_file_and_line(voc, tools):
    voc.yaml.write_text("path: data\nnames: [with_mask, without_mask\ntrain: x\n")
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    line = tools.assert_one_line_error(proc, f"{voc.yaml}:")
    assert "not valid YAML" in line


def test_script_bad_map_is_a_one_line_error(voc, tools):
    proc = tools.run_script("voc2yolo.py", *voc_args(voc, "--map", "mask"))
    tools.assert_one_line_error(proc, "--map expects OLD=NEW", "'mask'")


# --- a photo with boxes, none importable: no label file (an empty one means "no faces") -----------


def test_a_photo_whose_classes_are_all_unknown_gets_no_label_file_and_the_exit_status_is_1(voc, make_voc, tools):
    make_voc(voc.xml / "b.xml", [("mask", 0, 0, 32, 32), ("nomask", 32, 32, 64, 64), ("nomask", 1, 1, 9, 9)])
    proc = tools.run_script("voc2yolo.py", *voc_args(voc))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (voc.out / "b.txt").exists()
    assert (voc.out / "c.txt").read_text() == "", "an XML without objects is still a background photo"
    assert (f"left out: {voc.xml / 'b.xml'}: none of its 3 boxes could be imported (3 of classes not in data.yaml); "
            "no label file written") in proc.stdout.splitlines()
    assert f"wrote 2 label files to {voc.out}" in proc.stdout
    assert ("NOT imported: 1 photos that have boxes, listed above (1 none importable: classes not in data.yaml): they got "
            "no label file rather than an empty one (a photo without faces) or a corrupted one") in proc.stdout.splitlines()


def test_a_photo_whose_boxes_are_all_dropped_or_unreadable_gets_no_label_file(voc, make_voc):
    make_voc(voc.xml / "b.xml", [("with_mask", 40, 10, 20, 30), ("without_mask", 70, 70, 90, 90)])  # inverted; outside 64x64
    xml = voc.xml / "b.xml"
    xml.write_text(xml.read_text().replace("<object>", "<object><name>with_mask</name></object>\n<object>", 1))  # no <bndbox>
    report, echoed = convert(voc)
    assert not (voc.out / "b.txt").exists() and report.files_written == 2 and report.exit_status == 1
    assert (f"left out: {xml}: none of its 3 boxes could be imported (1 unreadable, 2 dropped); no label file "
            "written") in echoed  # the unreadable one is named as such (the summary counts it among the dropped)
    assert report.left_out_reasons == {"none importable: unreadable or dropped": 1}


def test_a_photo_left_out_keeps_a_label_file_from_before_and_says_so(voc, make_voc):
    voc.out.mkdir()
    (voc.out / "b.txt").write_text("2 0.5 0.5 0.2 0.2\n")  # an earlier import's, or someone's
    make_voc(voc.xml / "b.xml", [("mask", 0, 0, 32, 32)])
    report, _ = convert(voc, force=True)
    assert (voc.out / "b.txt").read_text() == "2 0.5 0.5 0.2 0.2\n"
    assert report.left_out == [f"{voc.xml / 'b.xml'}: none of its 1 boxes could be imported (1 of classes not in data.yaml); "
                               f"no label file written; {voc.out / 'b.txt'} from before is left as it was"]


def test_a_map_onto_a_class_data_yaml_does_not_have_is_refused_before_anything_is_written(voc, tools):
    proc = tools.run_script("voc2yolo.py", *voc_args(voc, "--map", "with_mask=nonexist"))
    tools.assert_one_line_error(proc, "--map with_mask=nonexist: 'nonexist' is not a class of",
                                "its classes are with_mask, without_mask, mask_weared_incorrect")
    assert not voc.out.exists()


# --- import_yolo: a Roboflow export --------------------------------------------------------------


@pytest.fixture(params=["../{split}/images", "{split}/images"], ids=["roboflow-relative", "plain-relative"])
def roboflow(request, tmp_path, make_image, make_labels, make_data_yaml):
    """A tiny Roboflow-style export: its own data.yaml, other class names and order, train/ and valid/."""
    src = tmp_path / "export"
    style = request.param
    (src).mkdir()
    (src / "data.yaml").write_text(
        f"train: {style.format(split='train')}\nval: {style.format(split='valid')}\n"
        "nc: 4\nnames: ['no-mask', 'mask', 'incorrect', 'face-shield']\n"
    )
    for stem, seed in (("p1", 1), ("p2", 2), ("p3", 3)):
        make_image(src / "train" / "images" / f"{stem}.jpg", 40, 30, seed=seed)
    make_image(src / "valid" / "images" / "v1.jpg", 40, 30, seed=4)
    make_labels(src / "train" / "labels" / "p1.txt", ["0 0.5 0.5 0.2 0.2", "1 0.25 0.25 0.1 0.1"])
    make_labels(src / "train" / "labels" / "p2.txt", ["2 0.5 0.5 0.4 0.4", "3 0.3 0.3 0.1 0.1"])
    # p3 has no label file: a background image.
    make_labels(src / "valid" / "labels" / "v1.txt", ["1 0.95 0.5 0.2 0.2", "7 0.5 0.5 0.1 0.1"])
    ours = make_data_yaml(tmp_path / "project")
    return SimpleNamespace(src=src, yaml=src / "data.yaml", out=tmp_path / "incoming", config=load_dataset_config(ours), ours=ours)


RF_MAP = {"mask": "with_mask", "no-mask": "without_mask", "incorrect": "mask_weared_incorrect"}


def do_import(rf, rename=RF_MAP, prefix="rf_", **kwargs):
    echoed: list[str] = []
    report = import_yolo_dataset(rf.yaml, rf.out, rf.config, rename, prefix=prefix, echo=echoed.append, **kwargs)
    return report, echoed


def test_import_renumbers_class_ids_by_name_onto_ours(roboflow, tools):
    report, _ = do_import(roboflow)
    # theirs: 0 no-mask, 1 mask, 2 incorrect  ->  ours: 0 with_mask, 1 without_mask, 2 mask_weared_incorrect
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_p1.txt") == [[1, 0.5, 0.5, 0.2, 0.2], [0, 0.25, 0.25, 0.1, 0.1]]
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_p2.txt") == [[2, 0.5, 0.5, 0.4, 0.4]]
    assert report.stats.per_class == {"with_mask": 2, "without_mask": 1, "mask_weared_incorrect": 1}


def test_import_applies_the_prefix_and_copies_images_of_every_split(roboflow):
    report, _ = do_import(roboflow)
    images = sorted(p.name for p in (roboflow.out / "images").iterdir())
    labels = sorted(p.name for p in (roboflow.out / "labels").iterdir())
    assert images == ["rf_p1.jpg", "rf_p2.jpg", "rf_p3.jpg", "rf_v1.jpg"]
    assert labels == ["classes.txt", "rf_p1.txt", "rf_p2.txt", "rf_p3.txt", "rf_v1.txt"]
    assert (roboflow.out / "images" / "rf_v1.jpg").read_bytes() == (roboflow.src / "valid" / "images" / "v1.jpg").read_bytes()
    assert (report.images_copied, report.files_written) == (4, 4)


def test_import_skips_a_file_that_is_not_an_image_or_a_link_to_one_and_says_so(roboflow):
    (roboflow.src / "train" / "images" / "fake.jpg").write_text("hello\n")
    (roboflow.src / "train" / "labels" / "fake.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    secret = roboflow.src.parent / "secret.txt"
    secret.write_text("root:x:0:0\n")
    (roboflow.src / "train" / "images" / "pw.jpg").symlink_to(secret)
    report, echoed = do_import(roboflow)
    assert sorted(p.name for p in (roboflow.out / "images").iterdir()) == ["rf_p1.jpg", "rf_p2.jpg", "rf_p3.jpg", "rf_v1.jpg"]
    assert not (roboflow.out / "labels" / "rf_fake.txt").exists()
    assert [line.split(": ")[1] for line in echoed if line.startswith("skipped: ")] == [
        str(roboflow.src / "train" / "images" / name) for name in ("fake.jpg", "pw.jpg")]
    assert len(report.skipped) == 2 and all("not an image" in line for line in report.skipped)


def test_import_background_image_gets_an_empty_label_file(roboflow):
    do_import(roboflow)
    assert (roboflow.out / "labels" / "rf_p3.txt").read_text() == ""


def test_import_reports_unknown_classes_and_leaves_them_out(roboflow):
    report, _ = do_import(roboflow)
    assert report.stats.unknown == {"face-shield": 1}
    assert "'face-shield' x1" in report.summary_lines(roboflow.out)[-1]


def test_import_without_map_imports_nothing_of_differently_named_classes(roboflow):
    report, _ = do_import(roboflow, rename={})
    assert report.stats.boxes_out == 0
    assert set(report.stats.unknown) == {"no-mask", "mask", "incorrect", "face-shield"}


def test_import_skips_lines_with_ids_its_own_yaml_does_not_have(roboflow, tools):
    _, echoed = do_import(roboflow)
    assert any(e.startswith("skipped line: ") and "v1.txt:2" in e and "out of range" in e for e in echoed)
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_v1.txt") == [pytest.approx([0, 0.925, 0.5, 0.15, 0.2], abs=1e-6)]


def test_import_writes_classes_txt(roboflow):
    do_import(roboflow)
    assert (roboflow.out / "labels" / "classes.txt").read_text().splitlines() == NAMES


def test_import_accepts_names_as_a_mapping(roboflow, tools):
    text = roboflow.yaml.read_text().replace("names: ['no-mask', 'mask', 'incorrect', 'face-shield']",
                                             "names:\n  0: no-mask\n  1: mask\n  2: incorrect\n  3: face-shield")
    roboflow.yaml.write_text(text)
    do_import(roboflow)
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_p1.txt")[0][0] == 1


def test_import_refuses_to_overwrite_without_force(roboflow, tools):
    do_import(roboflow)
    (roboflow.src / "train" / "labels" / "p1.txt").write_text("0 0.4 0.4 0.2 0.2\n")  # the export changed since
    before = tools.snapshot(roboflow.out)
    with pytest.raises(UserError, match="--force") as err:
        do_import(roboflow)
    assert str(roboflow.out / "labels" / "rf_p1.txt") in str(err.value) and "nothing was written" in str(err.value)
    assert tools.snapshot(roboflow.out) == before
    report, _ = do_import(roboflow, force=True)
    assert (report.files_written, report.already_there) == (1, 3)
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_p1.txt") == [[1, 0.4, 0.4, 0.2, 0.2]]


def test_a_rerun_of_the_same_import_keeps_every_file_and_says_so(roboflow, tools):
    do_import(roboflow)
    before = tools.snapshot(roboflow.out)
    report, _ = do_import(roboflow)
    assert tools.snapshot(roboflow.out) == before, "nothing rewritten, not even a timestamp"
    assert (report.files_written, report.images_copied, report.already_there) == (0, 0, 4)
    assert "4 photos were already there exactly so (an earlier run), kept" in report.summary_lines(roboflow.out)[0]


def test_an_interrupted_import_leaves_no_photo_without_its_label_and_a_rerun_completes_it(roboflow, tools, monkeypatch):
    # Ctrl-C arriving while the third photo is being written: its label is there, its copy is not. A photo without a
    # label would be taken for one without faces by split.py, check.py and training.
    restore = ctrl_c_at_call(monkeypatch, "atomic_copy", 3)
    with pytest.raises(KeyboardInterrupt):
        do_import(roboflow)
    restore()
    images = {p.stem for p in (roboflow.out / "images").iterdir()}
    labels = {p.stem for p in (roboflow.out / "labels").iterdir()} - {"classes"}
    assert len(images) == 2 and images < labels, "every copied photo has its label"
    report, _ = do_import(roboflow)  # the same command again, no --force
    assert sorted(p.name for p in (roboflow.out / "images").iterdir()) == ["rf_p1.jpg", "rf_p2.jpg", "rf_p3.jpg", "rf_v1.jpg"]
    assert report.already_there == 2 and report.images_copied == 2
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_p1.txt") == [[1, 0.5, 0.5, 0.2, 0.2], [0, 0.25, 0.25, 0.1, 0.1]]


def test_import_same_name_in_two_splits_is_refused(roboflow, make_image):
    make_image(roboflow.src / "valid" / "images" / "p1.jpg")
    with pytest.raises(UserError, match="--prefix"):
        do_import(roboflow)
    assert not roboflow.out.exists()


def test_import_takes_a_split_given_as_a_list_of_folders_as_ultralytics_does(roboflow, make_image, make_labels):
    make_image(roboflow.src / "extra" / "images" / "e1.jpg", 40, 30, seed=9)
    make_labels(roboflow.src / "extra" / "labels" / "e1.txt", ["1 0.5 0.5 0.2 0.2"])
    text = roboflow.yaml.read_text()
    train = text.splitlines()[0].removeprefix("train: ")
    roboflow.yaml.write_text(text.replace(f"train: {train}\n", f"train: [{train}, {train.replace('train', 'extra')}]\n"))
    report, _ = do_import(roboflow)
    assert sorted(p.name for p in (roboflow.out / "images").iterdir()) == ["rf_e1.jpg", "rf_p1.jpg", "rf_p2.jpg",
                                                                           "rf_p3.jpg", "rf_v1.jpg"]
    assert (roboflow.out / "labels" / "rf_e1.txt").read_text() == "0 0.500000 0.500000 0.200000 0.200000\n"


@pytest.mark.parametrize("value", ["[]", "[7]", "{a: b}", "7"])
def test_import_split_that_is_neither_a_folder_nor_a_list_of_them_names_the_yaml(roboflow, value):
    text = roboflow.yaml.read_text()
    roboflow.yaml.write_text(text.replace(text.splitlines()[0], f"train: {value}"))
    with pytest.raises(UserError, match="'train' must be a folder path or a list of them") as err:
        do_import(roboflow)
    assert err.value.path == roboflow.yaml
    assert not roboflow.out.exists()


def test_import_missing_split_folder_is_named(roboflow):
    roboflow.yaml.write_text(roboflow.yaml.read_text() + "test: ../test/images\n")
    with pytest.raises(UserError, match="'test' folder") as err:
        do_import(roboflow)
    assert str(roboflow.yaml) in str(err.value)


def test_import_never_touches_the_export(roboflow, tools):
    before = tools.snapshot(roboflow.src)
    do_import(roboflow)
    assert tools.snapshot(roboflow.src) == before


def test_import_cli_exits_1_when_classes_were_left_out(roboflow, capsys):
    argv = ["--src", str(roboflow.yaml), "--out", str(roboflow.out), "--data", str(roboflow.ours), "--prefix", "rf_",
            "--map", "mask=with_mask", "--map", "no-mask=without_mask", "--map", "incorrect=mask_weared_incorrect"]
    assert import_yolo_cli.main(argv) == 1
    assert "--map" in capsys.readouterr().out
    argv_all = [*argv, "--map", "face-shield=with_mask", "--force"]
    assert import_yolo_cli.main(argv_all) == 1, "v1.txt's class 7 line is still left out"
    (roboflow.src / "valid" / "labels" / "v1.txt").write_text("1 0.95 0.5 0.2 0.2\n")
    assert import_yolo_cli.main(argv_all) == 0


def test_import_script_missing_source_yaml_is_named(tmp_path, tools, data_yaml):
    missing = tmp_path / "nowhere" / "data.yaml"
    proc = tools.run_script("import_yolo.py", "--src", missing, "--out", tmp_path / "in", "--data", data_yaml)
    tools.assert_one_line_error(proc, missing, "file not found")


def test_import_script_bad_source_yaml_names_file_and_line(tmp_path, tools, data_yaml):
    src = tmp_path / "export" / "data.yaml"
    src.parent.mkdir()
    src.write_text("train: train/images\nnames: {0: a\nval: x\n")
    proc = tools.run_script("import_yolo.py", "--src", src, "--out", tmp_path / "in", "--data", data_yaml)
    tools.assert_one_line_error(proc, f"{src}:", "not valid YAML")


def test_import_script_refuses_to_overwrite(roboflow, tools):
    do_import(roboflow)
    (roboflow.src / "train" / "images" / "p3.jpg").write_bytes((roboflow.src / "train" / "images" / "p1.jpg").read_bytes())
    proc = tools.run_script("import_yolo.py", "--src", roboflow.yaml, "--out", roboflow.out, "--data", roboflow.ours, "--prefix", "rf_")
    tools.assert_one_line_error(proc, "already exist", "--force", Path(roboflow.out))


def rf_args(rf, *extra):
    return ["--src", str(rf.yaml), "--out", str(rf.out), "--data", str(rf.ours), "--prefix", "rf_", *map(str, extra)]


def test_import_a_photo_whose_classes_are_all_unknown_is_not_imported_but_a_background_is(roboflow, make_labels, capsys):
    make_labels(roboflow.src / "train" / "labels" / "p3.txt", [])  # an empty label file: a background, as no file is
    assert import_yolo_cli.main(rf_args(roboflow)) == 1  # no --map: none of its class names is one of ours
    out = capsys.readouterr().out
    labels, images = roboflow.out / "labels", roboflow.out / "images"
    assert sorted(p.name for p in labels.iterdir()) == ["classes.txt", "rf_p3.txt"]
    assert sorted(p.name for p in images.iterdir()) == ["rf_p3.jpg"]
    assert (labels / "rf_p3.txt").read_text() == ""
    p1 = roboflow.src / "train" / "labels" / "p1.txt"
    assert (f"left out: {p1}: none of its 2 boxes could be imported (2 of classes not in data.yaml); "
            f"{roboflow.src / 'train' / 'images' / 'p1.jpg'} not imported") in out.splitlines()
    assert f"wrote 1 label files to {roboflow.out} and copied 1 images" in out
    assert ("NOT imported: 3 photos that have boxes, listed above (2 none importable: classes not in data.yaml; "
            "1 none importable: unreadable or classes not in data.yaml): they got no label file rather than an empty one "
            "(a photo without faces) or a corrupted one") in out.splitlines()  # v1: a class-7 line and a 'mask' one


def test_import_map_onto_a_class_data_yaml_does_not_have_is_refused_before_anything_is_written(roboflow, tools):
    proc = tools.run_script("import_yolo.py", *rf_args(roboflow, "--map", "mask=with_mask", "--map", "no-mask=withoutmask"))
    tools.assert_one_line_error(proc, "--map no-mask=withoutmask: 'withoutmask' is not a class of",
                                "its classes are with_mask, without_mask, mask_weared_incorrect")
    assert not roboflow.out.exists()


def test_import_counts_and_reports_every_clipped_and_dropped_box(roboflow, make_labels, tools):
    p1 = make_labels(roboflow.src / "train" / "labels" / "p1.txt", [
        "1 0.5 0.5 1.2 0.2",  # crosses the left and right edges: clipped
        "1 1.4 1.4 0.1 0.1",  # wholly outside, past the corner: dropped
        "1 0.3 0.3 0 0.1",  # no width: dropped
        "1 0.25 0.25 0.1 0.1",
        "1 0.25 0.25 0.1 0.1",  # the same box again: dropped
    ])
    report, echoed = do_import(roboflow)
    v1 = roboflow.src / "valid" / "labels" / "v1.txt"
    assert [e for e in echoed if "clipped" in e or "dropped" in e] == [
        f"{p1}:1: clipped box 'mask' to the image",
        f"{p1}:2: dropped box 'mask' lying outside the image",
        f"{p1}:3: dropped empty or inverted box 'mask' (0.3,0.25)-(0.3,0.35)",
        f"{p1}:5: dropped box 'mask': the same box as line 4",
        f"{v1}:1: clipped box 'mask' to the image",  # 0.95 +- 0.1 crosses the right edge
    ]
    assert report.summary_lines(roboflow.out)[1] == ("boxes: 4 written of 8 read; 2 clipped to the image edge; "
                                                     "3 dropped (unreadable, empty, inverted, outside or duplicate)")
    assert tools.read_label_lines(roboflow.out / "labels" / "rf_p1.txt") == [
        pytest.approx([0, 0.5, 0.5, 1.0, 0.2], abs=1e-6), pytest.approx([0, 0.25, 0.25, 0.1, 0.1], abs=1e-6)]


@pytest.mark.parametrize("line", ["1 0.5 0.5 2 2", "1 320 240 50 60", "1 -0.7 0.5 0.1 0.1"], ids=["size", "pixels", "centre"])
def test_import_leaves_out_a_photo_with_coordinates_far_outside_0_1_naming_file_and_line(roboflow, make_labels, line):
    p1 = make_labels(roboflow.src / "train" / "labels" / "p1.txt", ["0 0.5 0.5 0.2 0.2", line])
    report, echoed = do_import(roboflow)
    assert not (roboflow.out / "labels" / "rf_p1.txt").exists() and not (roboflow.out / "images" / "rf_p1.jpg").exists()
    assert f"{p1}:2: coordinates far outside [0, 1] in '{line}': pixels, not fractions of the image?" in echoed
    assert (f"left out: {p1}: coordinates far outside [0, 1] on line 2; {roboflow.src / 'train' / 'images' / 'p1.jpg'} "
            "not imported: clipping would make other boxes of them") in echoed
    assert report.left_out_reasons == {"coordinates far outside [0, 1]": 1} and report.exit_status == 1
    assert report.bad_lines == 1, "v1's class 7 only: the far line is counted once, as its photo"
    assert (roboflow.out / "labels" / "rf_p2.txt").exists(), "the other photos are imported"


@pytest.mark.parametrize("prefix", ["../../evil_", "a/b", "a\\b", "..", "x:y", "tab\t"])
def test_import_prefix_that_is_a_path_or_not_a_file_name_is_refused_before_anything_is_written(roboflow, tmp_path, tools,
                                                                                                 prefix, capsys):
    before = tools.all_files(tmp_path)
    with pytest.raises(SystemExit) as exc:
        import_yolo_cli.main(["--src", str(roboflow.yaml), "--out", str(roboflow.out / "x" / "y"),
                              "--data", str(roboflow.ours), "--prefix", prefix])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: argument --prefix: {ascii(prefix)} contains ")
    assert tools.all_files(tmp_path) == before
    with pytest.raises(UserError, match="--prefix"):  # the library refuses it too
        do_import(roboflow, prefix=prefix)
    assert tools.all_files(tmp_path) == before


def test_import_script_prefix_outside_out_is_a_one_line_error(roboflow, tools):
    proc = tools.run_script("import_yolo.py", "--src", roboflow.yaml, "--out", roboflow.out, "--data", roboflow.ours,
                            "--prefix", "../evil_")
    tools.assert_one_line_error(proc, "argument --prefix: '../evil_' contains '..'")
    assert not roboflow.out.exists() and not list(roboflow.out.parent.glob("evil_*"))


# --- an existing classes.txt that disagrees, bad label lines ------------------------------------


def test_voc2yolo_keeps_a_classes_txt_that_disagrees_unless_forced(voc, tools):
    voc.out.mkdir()
    (voc.out / "classes.txt").write_text("dog\ncat\n")  # someone's labels folder, with their own ids
    before = tools.snapshot(voc.out)
    with pytest.raises(UserError, match="classes.txt: already exists and disagrees with data.yaml"):
        convert(voc)
    assert tools.snapshot(voc.out) == before, "nothing written"
    _, echoed = convert(voc, force=True)
    assert (voc.out / "classes.txt").read_text().splitlines() == NAMES
    assert any("replaced because of --force" in line for line in echoed)


def test_import_keeps_a_classes_txt_that_disagrees_unless_forced(roboflow):
    (roboflow.out / "labels").mkdir(parents=True)
    (roboflow.out / "labels" / "classes.txt").write_text("without_mask\nwith_mask\n")
    with pytest.raises(UserError, match="disagrees with data.yaml"):
        do_import(roboflow)
    assert sorted(p.name for p in (roboflow.out / "labels").iterdir()) == ["classes.txt"]
    do_import(roboflow, force=True)
    assert (roboflow.out / "labels" / "classes.txt").read_text().splitlines() == NAMES


def test_a_photo_whose_label_lines_are_all_unreadable_is_not_imported_as_a_background(roboflow, capsys):
    (roboflow.src / "train" / "labels" / "p1.txt").write_text("0 0.5 0.5\nmask 0.2 0.2 0.1 0.1\n")  # faces, none readable
    code = import_yolo_cli.main(["--src", str(roboflow.yaml), "--out", str(roboflow.out), "--data", str(roboflow.ours),
                                 "--prefix", "rf_", "--map", "mask=with_mask", "--map", "no-mask=without_mask",
                                 "--map", "incorrect=mask_weared_incorrect"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert not (roboflow.out / "labels" / "rf_p1.txt").exists() and not (roboflow.out / "images" / "rf_p1.jpg").exists()
    assert "NOT imported: 3 label lines that could not be read" in out  # p1's two and v1's class 7
    assert "skipped 1 files" in out


def test_import_exits_non_zero_when_a_label_line_could_not_be_read(roboflow, capsys):
    # v1.txt's second line names class 7 of a 4-class yaml: the rest is imported, the exit status says not all of it.
    code = import_yolo_cli.main(["--src", str(roboflow.yaml), "--out", str(roboflow.out), "--data", str(roboflow.ours),
                                 "--prefix", "rf_", "--map", "mask=with_mask", "--map", "no-mask=without_mask",
                                 "--map", "incorrect=mask_weared_incorrect", "--map", "face-shield=with_mask"])
    assert code == 1
    assert "NOT imported: 1 label lines" in capsys.readouterr().out


def test_import_of_a_yaml_alias_bomb_is_one_line_not_a_memory_error(tmp_path, data_yaml):
    src = tmp_path / "bomb.yaml"
    src.write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nnames: *c\ntrain: images\n")
    with pytest.raises(UserError, match="anchors and aliases"):
        import_yolo_dataset(src, tmp_path / "out", load_dataset_config(data_yaml))


def test_class_names_from_a_downloaded_dataset_are_printed_with_control_characters_escaped(roboflow, capsys):
    # A class named to retitle the terminal ('\x1b]0;...\x07'), as a hostile export could.
    roboflow.yaml.write_text(roboflow.yaml.read_text().replace("'face-shield'", '"\\e]0;owned\\amask"'))
    assert import_yolo_cli.main(rf_args(roboflow)) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "NOT imported, class not in data.yaml: " in out and "'\\x1b]0;owned\\x07mask' x1" in out
