"""maskdet.data.split and labeling/split.py: data/{train,val,test}/{images,labels} from a folder of photos.

By ratios (seeded, stratified so a rare class reaches every split) or exactly by lists; the
originals are only read; an existing split is replaced only with --force, and then completely.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from maskdet.cli import split as split_cli
from maskdet.config import SPLITS, load_dataset_config
from maskdet.data.split import (
    Sample,
    collect_samples,
    fill_empty_training_splits,
    prepare_output,
    read_stem_list,
    split_from_lists,
    stratified_split,
)
from maskdet.errors import UserError

RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}


def fake_samples(common: int = 40, rare: int = 4, backgrounds: int = 6, rare_class: int = 2) -> list[Sample]:
    """Samples (no files): class 0 everywhere, class 1 in every third, rare_class in the first `rare`."""
    out = []
    for i in range(common):
        classes = {0} | ({1} if i % 3 == 0 else set()) | ({rare_class} if i < rare else set())
        out.append(Sample(f"img{i:03d}", Path(f"img{i:03d}.png"), Path(f"img{i:03d}.txt"), frozenset(classes)))
    out += [Sample(f"bg{j:02d}", Path(f"bg{j:02d}.png"), None, frozenset()) for j in range(backgrounds)]
    return out


def stems(assignment: dict[str, list[Sample]]) -> dict[str, list[str]]:
    return {split: [s.stem for s in samples] for split, samples in assignment.items()}


# --- stratified_split --------------------------------------------------------------------------


def test_every_image_lands_in_exactly_one_split():
    samples = fake_samples()
    assignment = stratified_split(samples, RATIOS, seed=0)
    assert set(assignment) == set(SPLITS)
    assigned = [s.stem for v in assignment.values() for s in v]
    assert sorted(assigned) == sorted(s.stem for s in samples)


def test_split_sizes_follow_the_ratios():
    samples = fake_samples(common=90, rare=5, backgrounds=10)
    sizes = {k: len(v) for k, v in stratified_split(samples, RATIOS, seed=3).items()}
    # Each class group is shared out by largest remainder: at most one image off per group (4 groups).
    for split, ratio in RATIOS.items():
        assert abs(sizes[split] - ratio * 100) <= 4, sizes


def test_same_seed_same_split_other_seed_other_split():
    samples = fake_samples()
    first = stems(stratified_split(samples, RATIOS, seed=7))
    assert stems(stratified_split(list(reversed(samples)), RATIOS, seed=7)) == first  # input order does not matter
    assert stems(stratified_split(samples, RATIOS, seed=8)) != first


@pytest.mark.parametrize("rare", [3, 4, 5])
def test_rare_class_reaches_every_split_whatever_the_seed(rare):
    samples = fake_samples(common=60, rare=rare)
    for seed in range(25):
        assignment = stratified_split(samples, RATIOS, seed=seed)
        for split, chosen in assignment.items():
            assert any(2 in s.classes for s in chosen), (rare, seed, split)


def test_every_class_reaches_every_split():
    samples = fake_samples(common=60, rare=3)
    assignment = stratified_split(samples, RATIOS, seed=1)
    for split, chosen in assignment.items():
        assert set().union(*(s.classes for s in chosen)) == {0, 1, 2}, split


def test_backgrounds_are_split_too():
    assignment = stratified_split(fake_samples(backgrounds=20), RATIOS, seed=0)
    counts = {split: sum(s.label is None for s in chosen) for split, chosen in assignment.items()}
    assert sum(counts.values()) == 20
    assert all(n > 0 for n in counts.values()), counts


def test_only_backgrounds_is_allowed():
    assignment = stratified_split(fake_samples(common=0, rare=0, backgrounds=10), RATIOS, seed=0)
    assert sum(len(v) for v in assignment.values()) == 10


def test_zero_ratio_gives_an_empty_split():
    assignment = stratified_split(fake_samples(), {"train": 0.8, "val": 0.2, "test": 0.0}, seed=0)
    assert assignment["test"] == []
    assert len(assignment["train"]) + len(assignment["val"]) == 46
    assert any(2 in s.classes for s in assignment["val"])


def test_class_in_fewer_images_than_splits_is_still_assigned():
    assignment = stratified_split(fake_samples(rare=2), RATIOS, seed=0)
    assert sum(2 in s.classes for v in assignment.values() for s in v) == 2


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_rounding_never_leaves_train_or_val_empty_when_there_are_two_photos(n):
    # Images in class groups too small to go round: largest remainder alone gives all of them to train.
    samples = [Sample(f"img{i}", Path(f"img{i}.png"), Path(f"img{i}.txt"), frozenset({i % 3})) for i in range(n)]
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    for seed in range(10):
        assignment = stratified_split(samples, ratios, seed=seed)
        fill_empty_training_splits(assignment, ratios)
        assert assignment["train"] and assignment["val"], (n, seed, stems(assignment))
        assert sum(len(v) for v in assignment.values()) == n


def test_each_split_is_sorted_by_name():
    for chosen in stratified_split(fake_samples(), RATIOS, seed=5).values():
        assert [s.stem for s in chosen] == sorted(s.stem for s in chosen)


# --- files on disk ------------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path, make_image, make_labels, data_yaml):
    """A photo folder: 24 labelled images (class 2 in only 4 of them), 4 backgrounds, labels beside."""
    images, labels = tmp_path / "photos" / "images", tmp_path / "photos" / "labels"
    for i in range(24):
        stem = f"img{i:03d}"
        make_image(images / f"{stem}.png", 8, 8, seed=i)
        lines = ["0 0.5 0.5 0.2 0.2"] + (["1 0.3 0.3 0.1 0.1"] if i % 3 == 0 else []) + (["2 0.7 0.7 0.1 0.1"] if i % 6 == 1 else [])
        make_labels(labels / f"{stem}.txt", lines)
    for j in range(4):
        make_image(images / f"bg{j}.jpg", 8, 8, seed=100 + j)
    (labels / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\n")
    return SimpleNamespace(root=tmp_path / "photos", images=images, labels=labels, out=tmp_path / "dataset", yaml=data_yaml)


def run_split(src, *extra: str) -> int:
    return split_cli.main(["--images", str(src.images), "--labels", str(src.labels), "--data", str(src.yaml),
                           "--out", str(src.out), *extra])


def output(out: Path) -> dict[str, set[str]]:
    """split/kind -> file names (hidden ones included: temp files must not be left behind)."""
    return {f"{s}/{k}": {p.name for p in (out / s / k).iterdir()} for s in SPLITS for k in ("images", "labels") if (out / s / k).is_dir()}


def test_collect_pairs_images_with_labels_by_stem(source):
    samples = {s.stem: s for s in collect_samples(source.images, source.labels)}
    assert len(samples) == 28
    assert samples["img001"].label == source.labels / "img001.txt"
    assert samples["img001"].classes == {0, 2}
    assert dict(samples["img000"].boxes_per_class) == {0: 1, 1: 1}
    assert samples["bg0"].label is None and samples["bg0"].classes == frozenset()


def test_collect_refuses_two_images_with_one_stem(source, make_image):
    make_image(source.images / "img000.jpg")
    with pytest.raises(UserError, match="img000") as err:
        collect_samples(source.images, source.labels)
    assert str(source.images) in str(err.value)


def test_collect_with_no_images_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no images found"):
        collect_samples(tmp_path, tmp_path)


def test_split_writes_every_image_and_its_label_once(source, capsys):
    assert run_split(source) == 0
    files = output(source.out)
    images = [n for s in SPLITS for n in files[f"{s}/images"]]
    assert sorted(images) == sorted(p.name for p in source.images.iterdir())
    for split in SPLITS:
        labelled = {Path(n).stem for n in files[f"{split}/images"] if not n.startswith("bg")}
        assert {Path(n).stem for n in files[f"{split}/labels"]} == labelled
        for name in files[f"{split}/labels"]:
            assert (source.out / split / "labels" / name).read_bytes() == (source.labels / name).read_bytes()
        assert not (source.out / split / "labels" / "classes.txt").exists()
    out = capsys.readouterr().out
    assert f"split 28 images into {source.out}" in out


def test_photos_whose_label_files_cannot_be_used_are_left_out_named_and_counted_and_the_rest_is_split(source, capsys):
    """A label file that is a folder stopped the copying halfway; 'nan' or three numbers were copied without a word."""
    (source.labels / "img003.txt").unlink()
    (source.labels / "img003.txt").mkdir()
    (source.labels / "img004.txt").write_text("0 nan 0.5 0.2 0.2\n")
    (source.labels / "img005.txt").write_text("0 0.5 0.5\n")
    (source.labels / "img007.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\n\xff\xfe\n")
    assert run_split(source) == 1
    files = output(source.out)
    written = {Path(n).stem for s in SPLITS for n in files[f"{s}/images"]}
    assert written == {p.stem for p in source.images.iterdir()} - {"img003", "img004", "img005", "img007"}
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if line.startswith("skipped: ")]
    assert [line.split(": ")[1] for line in skipped] == [str(source.labels / name) for name in
                                                         ("img003.txt", "img004.txt:1", "img005.txt:1", "img007.txt")]
    assert "skipped 4 photos whose label files cannot be used as they are" in out and "split 24 images" in out


def test_a_data_yaml_already_in_the_output_is_kept_and_said_not_to_describe_the_split(source, capsys):
    source.out.mkdir()
    theirs = "path: .\ntrain: tr/images\nval: va/images\nnames: [cat, dog]\n"
    (source.out / "data.yaml").write_text(theirs)
    assert run_split(source) == 0
    out = capsys.readouterr().out
    assert (source.out / "data.yaml").read_text() == theirs
    assert f"note: kept the data.yaml that was already there ({source.out / 'data.yaml'}), but it does not describe " \
           "this split: its classes are cat, dog, not with_mask, without_mask, mask_weared_incorrect" in out
    (source.out / "data.yaml").write_text(theirs.replace("[cat, dog]", "[with_mask, without_mask, mask_weared_incorrect]"))
    assert run_split(source, "--force") == 0
    assert f"its train: is not {(source.out / 'train' / 'images').resolve()}" in capsys.readouterr().out
    (source.out / "data.yaml").write_text("path: .\ntrain: train/images\nval: val/images\ntest: test/images\n"
                                          "names: [with_mask, without_mask, mask_weared_incorrect]\n")
    assert run_split(source, "--force") == 0
    assert "note: kept" not in capsys.readouterr().out  # one that describes it: nothing to say


def test_a_split_stopped_by_ctrl_c_says_how_far_it_got_and_how_to_redo_it(source, monkeypatch, capsys):
    import maskdet.data.split as splitting

    real_copy, copies = splitting.atomic_copy, []

    def copy_then_ctrl_c(src, dst):
        copies.append(dst)
        if len(copies) == 8:
            raise KeyboardInterrupt
        real_copy(src, dst)

    monkeypatch.setattr(splitting, "atomic_copy", copy_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_split(source)
    err = capsys.readouterr().err
    whole = [image for image in source.out.glob("*/images/*")  # written with its label (a background has none)
             if image.stem.startswith("bg") or (image.parent.parent / "labels" / f"{image.stem}.txt").exists()]
    assert f"stopped after {len(whole)} of 28 images: {source.out} holds part of the split" in err
    assert "run the same command with --force to write it whole" in err


def test_rare_class_reaches_every_split_on_disk(source):
    run_split(source, "--seed", "11")
    for split in SPLITS:
        text = "".join(p.read_text() for p in (source.out / split / "labels").iterdir())
        assert any(line.startswith("2 ") for line in text.splitlines()), split


def test_same_seed_gives_the_same_files(source, tmp_path):
    run_split(source, "--seed", "4")
    first = output(source.out)
    source.out = tmp_path / "again"
    run_split(source, "--seed", "4")
    assert output(source.out) == first


def test_out_defaults_to_the_path_in_data_yaml(source):
    assert split_cli.main(["--images", str(source.images), "--labels", str(source.labels), "--data", str(source.yaml)]) == 0
    assert len(list((source.yaml.parent / "data" / "train" / "images").iterdir())) > 0


def test_labels_default_to_the_images_folder(tmp_path, make_image, make_labels, data_yaml):
    # labelImg's YOLO mode saves photo.txt beside photo.jpg.
    for i in range(6):
        make_image(tmp_path / "photos" / f"p{i}.jpg", 8, 8)
        make_labels(tmp_path / "photos" / f"p{i}.txt", ["1 0.5 0.5 0.2 0.2"])
    assert split_cli.main(["--images", str(tmp_path / "photos"), "--data", str(data_yaml), "--out", str(tmp_path / "ds")]) == 0
    assert sum(len(v) for k, v in output(tmp_path / "ds").items() if k.endswith("labels")) == 6


def test_originals_are_never_modified_or_deleted(source, tools):
    before = tools.snapshot(source.root)
    run_split(source)
    run_split(source, "--force", "--seed", "3")
    run_split(source, "--force", "--link")
    run_split(source, "--force", "--ratios", "0.9", "0.1", "0")  # empties the old test split
    assert tools.snapshot(source.root) == before


def test_existing_split_is_not_touched_without_force(source, tools):
    run_split(source)
    before = tools.snapshot(source.out)
    with pytest.raises(UserError, match="--force") as err:
        run_split(source, "--seed", "9")
    assert "nothing was written" in str(err.value) and str(source.out) in str(err.value)
    assert tools.snapshot(source.out) == before


def test_force_replaces_the_split_and_leaves_no_stale_files(source):
    run_split(source, "--seed", "1")
    (source.out / "val" / "images" / "old_photo.png").write_bytes(b"stale")
    (source.out / "test" / "labels" / "old_photo.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    assert run_split(source, "--seed", "2", "--force") == 0
    samples = {s.stem: s for s in collect_samples(source.images, source.labels)}
    expected = stratified_split(list(samples.values()), {k: v / sum(RATIOS.values()) for k, v in RATIOS.items()}, seed=2)
    files = output(source.out)
    for split in SPLITS:
        assert files[f"{split}/images"] == {s.image.name for s in expected[split]}
        assert files[f"{split}/labels"] == {s.label.name for s in expected[split] if s.label is not None}


@pytest.mark.parametrize("split", SPLITS)
def test_force_refuses_an_output_that_holds_the_originals_before_clearing_anything(source, tools, split):
    # Re-splitting data/<split>/images into data/ with --force would empty the input first; refusing
    # must leave the whole earlier split as it was, not just the overlapping folder.
    run_split(source)
    inside = SimpleNamespace(**vars(source))
    inside.images = inside.labels = source.out / split / "images"
    before = tools.snapshot(source.out)
    with pytest.raises(UserError, match="overlaps the input"):
        run_split(inside, "--force")
    assert tools.snapshot(source.out) == before


def test_link_makes_symlinks_to_the_originals(source):
    assert run_split(source, "--link") == 0
    entries = [p for s in SPLITS for k in ("images", "labels") for p in (source.out / s / k).iterdir()]
    assert len(entries) == 28 + 24
    for p in entries:
        assert p.is_symlink(), p
        original = (source.images if p.parent.name == "images" else source.labels) / p.name
        assert p.resolve() == original.resolve()
        assert Path(p.readlink()).is_absolute()


def test_copy_mode_makes_real_files(source):
    run_split(source)
    assert not any(p.is_symlink() for s in SPLITS for p in (source.out / s / "images").iterdir())


def test_bad_ratios_are_refused(source, capsys):
    with pytest.raises(UserError, match="--ratios"):
        run_split(source, "--ratios", "0", "0", "0")
    with pytest.raises(SystemExit):  # a negative share: argparse's range check
        run_split(source, "--ratios", "0.7", "-0.1", "0.4")
    assert "argument --ratios: must be at least 0 and at most 1000000, got -0.1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # three of these add up to inf, and every share to 0
        run_split(source, "--ratios", "1e308", "1e308", "1e308")
    assert "argument --ratios: must be at least 0 and at most 1000000, got 1e308" in capsys.readouterr().err
    assert not source.out.exists()


@pytest.mark.parametrize(("ratios", "empty"), [(["1", "0", "0"], "val"), (["0", "1", "0.2"], "train")])
def test_ratios_that_give_train_or_val_no_photos_are_refused_before_anything_is_written(source, tools, ratios, empty):
    # train.py would say the val folder does not exist and send the user back to split.py.
    proc = tools.run_script("split.py", *script_args(source, "--ratios", *ratios))
    tools.assert_one_line_error(proc, f"gives {empty} no photos", "training needs photos in both train and val")
    assert not source.out.exists()


def few_photos(tmp_path: Path, make_image, make_labels, n: int) -> Path:
    """n photos of 64x48 (big enough for check.py), labels beside them, in two class groups."""
    folder = tmp_path / "few"
    for i in range(n):
        make_image(folder / f"p{i}.png", 64, 48, seed=i)
        make_labels(folder / f"p{i}.txt", [f"{i % 2} 0.5 0.5 0.3 0.3"])
    return folder


def test_three_photos_at_ordinary_ratios_still_put_one_in_val_and_say_test_is_empty(tmp_path, make_image, make_labels,
                                                                                   data_yaml, tools):
    photos = few_photos(tmp_path, make_image, make_labels, 3)
    out = tmp_path / "ds"
    proc = tools.run_script("split.py", "--images", photos, "--data", data_yaml, "--out", out, "--ratios", "0.8", "0.1", "0.1")
    assert proc.returncode == 0, proc.stderr
    sizes = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines() if line.split()[:1] in (["train"], ["val"], ["test"])}
    assert sizes == {"train": 2, "val": 1, "test": 0}, proc.stdout
    assert "(empty: no test photos" in proc.stdout
    # The dataset it wrote passes check.py: an empty test split blocks nothing.
    check = tools.run_script("check.py", "--data", out / "data.yaml", "--no-plots", "--project", tmp_path / "runs")
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr
    assert "warning: test images folder does not exist" in check.stdout


def test_one_photo_is_refused_saying_two_are_needed(tmp_path, make_image, make_labels, data_yaml, tools):
    photos = few_photos(tmp_path, make_image, make_labels, 1)
    proc = tools.run_script("split.py", "--images", photos, "--data", data_yaml, "--out", tmp_path / "ds")
    tools.assert_one_line_error(proc, photos, "training needs at least 2, one in train and one in val")
    assert not (tmp_path / "ds").exists()


def test_prepare_output_with_force_keeps_other_folders(tmp_path):
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("mine")
    (tmp_path / "train" / "labels.cache").write_bytes(b"c")
    prepare_output(tmp_path, ["train", "val", "test"], [tmp_path / "elsewhere"], force=True)
    assert list((tmp_path / "train" / "images").iterdir()) == []
    assert (tmp_path / "notes.md").read_text() == "mine"


# --- lists -------------------------------------------------------------------------------------


def write_lists(folder: Path, **lists: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in lists.items():
        (folder / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    return folder


def test_lists_are_followed_exactly(source, tmp_path, capsys):
    lists = write_lists(tmp_path / "lists", train=["# published split", "img000", "img001.png", "img002"],
                        val=[str(source.images / "img003.png"), "", "bg0  # a background"], test=["img004"])
    assert run_split(source, "--lists", str(lists)) == 0
    files = output(source.out)
    assert files["train/images"] == {"img000.png", "img001.png", "img002.png"}
    assert files["val/images"] == {"img003.png", "bg0.jpg"}
    assert files["val/labels"] == {"img003.txt"}
    assert files["test/images"] == {"img004.png"}
    assert "note: 22 images are in no list and were left out" in capsys.readouterr().out


def test_lists_may_name_only_some_splits(source, tmp_path):
    lists = write_lists(tmp_path / "lists", train=["img000"], val=["img001"])
    run_split(source, "--lists", str(lists))
    assert set(output(source.out)) == {"train/images", "train/labels", "val/images", "val/labels"}


def test_force_with_lists_without_test_empties_the_old_test_split_and_says_so(source, tmp_path, tools, capsys):
    # A ratio split first fills test; re-splitting by lists that name only train and val must not leave those
    # test photos beside a train split that now holds them too (a leak val.py --split test would measure).
    run_split(source)
    assert output(source.out)["test/images"]
    before = tools.snapshot(source.root)
    lists = write_lists(tmp_path / "lists", train=[f"img{i:03d}" for i in range(20)], val=["img020", "img021"])
    capsys.readouterr()
    assert run_split(source, "--lists", str(lists), "--force") == 0
    files = output(source.out)
    assert files["test/images"] == set() and files["test/labels"] == set()
    assert len(files["train/images"]) == 20 and files["val/images"] == {"img020.png", "img021.png"}
    assert f"emptied the old test split ({source.out / 'test'})" in capsys.readouterr().out
    assert tools.snapshot(source.root) == before  # the user's photos are only read


def test_lists_without_test_refuse_an_old_test_split_without_force(source, tmp_path, tools):
    run_split(source)
    before = tools.snapshot(source.out)
    lists = write_lists(tmp_path / "lists", train=["img000"], val=["img001"])
    with pytest.raises(UserError, match="--force"):
        run_split(source, "--lists", str(lists))
    assert tools.snapshot(source.out) == before


def test_unknown_stem_in_a_list_names_the_list_file_and_line(source, tmp_path):
    lists = write_lists(tmp_path / "lists", train=["img000"], val=["img001", "typo_img"])
    with pytest.raises(UserError, match="'typo_img' has no image") as err:
        split_from_lists(collect_samples(source.images, source.labels), lists)
    assert err.value.path == lists / "val.txt" and err.value.line == 2


def test_stem_in_two_lists_is_an_error(source, tmp_path):
    lists = write_lists(tmp_path / "lists", train=["img000", "img001"], test=["img001.png"])
    with pytest.raises(UserError, match="'img001' is listed in both train.txt and test.txt") as err:
        split_from_lists(collect_samples(source.images, source.labels), lists)
    assert err.value.path == lists / "test.txt" and err.value.line == 1


def test_folder_without_lists_is_an_error(source, tmp_path):
    (tmp_path / "lists").mkdir()
    with pytest.raises(UserError, match="no train.txt"):
        split_from_lists(collect_samples(source.images, source.labels), tmp_path / "lists")


def test_list_stems_may_contain_dots(source, tmp_path, make_image):
    # Roboflow names files like photo_jpg.rf.3f2a9c.jpg: its stem has dots of its own.
    make_image(source.images / "photo_jpg.rf.3f2a9c.jpg")
    lists = write_lists(tmp_path / "lists", train=["photo_jpg.rf.3f2a9c", "img000.png"], val=["img001"])
    assignment = split_from_lists(collect_samples(source.images, source.labels), lists)
    assert stems(assignment) == {"train": ["photo_jpg.rf.3f2a9c", "img000"], "val": ["img001"]}


@pytest.mark.parametrize("val", [None, ["# none yet"]])
def test_lists_that_give_val_no_photos_are_refused_before_anything_is_written(source, tmp_path, tools, val):
    lists = write_lists(tmp_path / "lists", train=["img000", "img001"], test=["img002"],
                        **({} if val is None else {"val": val}))
    proc = tools.run_script("split.py", *script_args(source, "--lists", lists))
    tools.assert_one_line_error(proc, lists, "leaves val without photos", "training needs photos in both train and val")
    assert not source.out.exists()


def test_read_stem_list_accepts_stems_names_paths_and_comments(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("# header\na\nb.jpg\n./images/c.PNG\n/abs/path/d.jpeg  # note\n\n   \n")
    assert read_stem_list(path) == ["a", "b", "c", "d"]


def test_a_hash_inside_a_name_is_not_a_comment_and_a_byte_order_mark_is_ignored(tmp_path):
    """'#' begins a comment at the start of a line or after a space, as in a shell; Notepad writes a BOM first."""
    path = tmp_path / "train.txt"
    path.write_text("\ufeffa\np#0\nIMG#7.jpg # the door camera\n#b\n", encoding="utf-8")
    assert read_stem_list(path) == ["a", "p#0", "IMG#7"]


# --- split.py as a user runs it ------------------------------------------------------------------


def script_args(src, *extra):
    return ["--images", src.images, "--labels", src.labels, "--data", src.yaml, "--out", src.out, *extra]


def test_script_unknown_stem_in_list_is_one_line_naming_the_list(source, tmp_path, tools):
    lists = write_lists(tmp_path / "lists", train=["img000", "nope"])
    proc = tools.run_script("split.py", *script_args(source, "--lists", lists))
    tools.assert_one_line_error(proc, lists / "train.txt", "'nope'")
    assert not source.out.exists()


def test_script_stem_in_two_lists_is_one_line(source, tmp_path, tools):
    lists = write_lists(tmp_path / "lists", train=["img000"], val=["img000"])
    proc = tools.run_script("split.py", *script_args(source, "--lists", lists))
    tools.assert_one_line_error(proc, lists / "val.txt", "train.txt and val.txt")


def test_script_refuses_an_existing_split_without_force(source, tools):
    run_split(source)
    before = tools.snapshot(source.out)
    proc = tools.run_script("split.py", *script_args(source, "--seed", "5"))
    tools.assert_one_line_error(proc, source.out, "--force")
    assert tools.snapshot(source.out) == before


def test_script_missing_images_folder_is_named(source, tools):
    source.images = source.root / "nothing_here"
    proc = tools.run_script("split.py", *script_args(source))
    tools.assert_one_line_error(proc, source.images, "not a folder")


def test_script_splits_and_exits_0(source, tools):
    proc = tools.run_script("split.py", *script_args(source, "--link"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"split 28 images into {source.out} (symlinks)" in proc.stdout
    counts = Counter(line.split()[0] for line in proc.stdout.splitlines() if line.split() and line.split()[0] in SPLITS)
    assert counts == {"train": 1, "val": 1, "test": 1}


def test_a_split_written_elsewhere_gets_its_own_data_yaml_and_the_next_hint_points_at_it(source, tools):
    proc = tools.run_script("split.py", *script_args(source))
    assert proc.returncode == 0, proc.stderr
    written = source.out / "data.yaml"
    assert proc.stdout.splitlines()[-1] == f"next: python labeling/check.py --data {written}"
    config = load_dataset_config(written)
    assert config.root == source.out.resolve() and config.names == load_dataset_config(source.yaml).names
    assert {s: config.images_dir(s) for s in SPLITS} == {s: source.out.resolve() / s / "images" for s in SPLITS}
    check = tools.run_script("check.py", "--data", written, "--no-plots", "--project", source.root / "runs")
    # check.py reads the split just written (its 8 px test images are too small to pass, which is beside the point)
    assert "Traceback" not in check.stderr and "[missing]" not in check.stdout, check.stdout[-2000:]
    assert f"{source.out}/train/images/" in check.stdout


def test_a_data_yaml_already_in_the_output_folder_is_kept(source, tools):
    source.out.mkdir()
    mine = source.out / "data.yaml"
    mine.write_text("# my own\npath: .\ntrain: train/images\nval: val/images\nnames: {0: with_mask, 1: without_mask, 2: mask_weared_incorrect}\n")
    proc = tools.run_script("split.py", *script_args(source))
    assert proc.returncode == 0, proc.stderr
    assert mine.read_text().startswith("# my own")
    assert proc.stdout.splitlines()[-1] == f"next: python labeling/check.py --data {mine}"


def test_class_ids_data_yaml_does_not_have_are_refused_before_anything_is_written(source, tools):
    (source.labels / "img005.txt").write_text("0 0.5 0.5 0.2 0.2\n5 0.3 0.3 0.1 0.1\n")  # data.yaml: 0..2
    with pytest.raises(UserError, match="class ids data.yaml") as err:
        run_split(source)
    assert f"{source.labels / 'img005.txt'}:2" in str(err.value) and "nothing was written" in str(err.value)
    assert not source.out.exists()
