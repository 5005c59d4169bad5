"""The real Kaggle face-mask dataset through the documented pipeline: voc2yolo.py, then split.py --lists.

Skipped where the dataset is not installed (<repo>/../shared/datasets/kaggle-facemask). The
dataset is read-only and never copied into the repository: everything is built under a tmp folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from maskdet.config import load_dataset_config
from maskdet.data.labels import read_label_file
from maskdet.data.split import read_stem_list

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = ROOT.parent / "shared" / "datasets" / "kaggle-facemask"
SPLITS = ("train", "val", "test")

EXPECTED_IMAGES = {"train": 597, "val": 128, "test": 128}
EXPECTED_BOXES = {"with_mask": 3232, "without_mask": 717, "mask_weared_incorrect": 123}
NAMES = tuple(EXPECTED_BOXES)  # data.yaml order
EXPECTED_CLIPPED = 12  # faces at the border annotated with xmax = width + 1 and the like

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (KAGGLE / "annotations").is_dir(), reason=f"Kaggle face-mask dataset not found at {KAGGLE}"),
]


def stat_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file (hashing 140 MB of PNGs would cost more than it tells)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def kaggle_pipeline(tmp_path_factory, tools, make_data_yaml):
    """Run the pipeline once for this module: VOC -> YOLO labels -> data/{train,val,test}."""
    root = tmp_path_factory.mktemp("kaggle")
    before = stat_snapshot(KAGGLE)
    data_yaml = make_data_yaml(root)  # path: data, i.e. root/data
    labels = root / "labels"
    convert = tools.run_script("voc2yolo.py", "--xml", KAGGLE / "annotations", "--images", KAGGLE / "images",
                               "--out", labels, "--data", data_yaml)
    split = tools.run_script("split.py", "--images", KAGGLE / "images", "--labels", labels, "--lists", KAGGLE / "splits",
                             "--data", data_yaml, "--out", root / "data")
    yield SimpleNamespace(root=root, data_yaml=data_yaml, labels=labels, data=root / "data",
                          convert=convert, split=split, before=before)
    shutil.rmtree(root / "data", ignore_errors=True)  # 140 MB of copied images


def count_boxes(label_files) -> tuple[Counter, list]:
    counts, issues = Counter(), []
    for path in label_files:
        parsed = read_label_file(path, num_classes=3)
        issues += parsed.issues
        counts.update(NAMES[b.cls] for b in parsed.boxes)
    return counts, issues


def test_kaggle_pipeline_end_to_end(kaggle_pipeline):
    """voc2yolo.py -> split.py --lists on the real data; extend with further pipeline steps (check.py) at the end."""
    p = kaggle_pipeline

    # Step 1: voc2yolo.py converts all 853 annotations, clipping the 12 boxes that cross the edge.
    assert p.convert.returncode == 0, p.convert.stdout[-2000:] + p.convert.stderr
    assert "Traceback" not in p.convert.stderr
    assert f"wrote 853 label files to {p.labels}" in p.convert.stdout
    assert (f"boxes: 4072 written of 4072 read; {EXPECTED_CLIPPED} clipped to the image edge; "
            "0 dropped (unreadable, empty, inverted or outside)") in p.convert.stdout
    clip_notes = [line for line in p.convert.stdout.splitlines() if ": clipped box '" in line]
    assert len(clip_notes) == EXPECTED_CLIPPED
    assert all(line.startswith(str(KAGGLE / "annotations")) and ".xml:" in line for line in clip_notes)
    assert "per class: with_mask 3232, without_mask 717, mask_weared_incorrect 123" in p.convert.stdout
    assert (p.labels / "classes.txt").read_text().splitlines() == list(NAMES)

    # Step 2: split.py --lists reproduces the published 597/128/128 split.
    assert p.split.returncode == 0, p.split.stdout[-2000:] + p.split.stderr
    assert "Traceback" not in p.split.stderr
    config = load_dataset_config(p.data_yaml)
    images = {s: sorted(config.images_dir(s).iterdir()) for s in SPLITS}
    labels = {s: sorted(config.labels_dir(s).iterdir()) for s in SPLITS}
    assert {s: len(v) for s, v in images.items()} == EXPECTED_IMAGES
    assert {s: len(v) for s, v in labels.items()} == EXPECTED_IMAGES
    counts, issues = count_boxes(f for s in SPLITS for f in labels[s])
    assert sum(counts.values()) == 4072
    assert counts == EXPECTED_BOXES
    assert issues == []  # clipped boxes are inside the image: nothing for check.py to fix

    # Step 3: check.py passes (exit 0) and describes the same numbers; it flags the known duplicate photos.
    run_dir = p.data.parent / "check-runs"
    check = subprocess.run([sys.executable, str(ROOT / "labeling" / "check.py"), "--data", str(p.data_yaml),
                            "--project", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    assert "Traceback" not in check.stderr
    rows = {line.split()[0]: line.split() for line in check.stdout.splitlines() if line.split()[:1] in (["train"], ["val"], ["test"])}
    assert {s: int(rows[s][1]) for s in SPLITS} == EXPECTED_IMAGES
    assert sum(int(rows[s][4]) for s in SPLITS) == 4072
    assert "0 errors, 0 fixable" in check.stdout
    assert check.stdout.count("(leaks between splits) [same-image]") == 2
    assert (run_dir / "exp" / "class_balance.png").exists()


def test_kaggle_split_follows_the_lists_exactly(kaggle_pipeline):
    for split in SPLITS:
        listed = sorted(read_stem_list(KAGGLE / "splits" / f"{split}.txt"))
        written = sorted(p.stem for p in (kaggle_pipeline.data / split / "images").iterdir())
        assert written == listed, split


def test_kaggle_every_class_is_in_every_split(kaggle_pipeline):
    for split in SPLITS:
        counts, _ = count_boxes((kaggle_pipeline.data / split / "labels").iterdir())
        assert set(counts) == set(EXPECTED_BOXES), split


def test_kaggle_labels_match_the_split_summary(kaggle_pipeline):
    # split.py prints per-split box counts; they must agree with what it wrote.
    for split in SPLITS:
        counts, _ = count_boxes((kaggle_pipeline.data / split / "labels").iterdir())
        row = next(line for line in kaggle_pipeline.split.stdout.splitlines() if line.startswith(split))
        assert f"{EXPECTED_IMAGES[split]} images" in " ".join(row.split())
        assert f"{sum(counts.values())} boxes" in " ".join(row.split())


def test_kaggle_originals_are_untouched(kaggle_pipeline):
    assert stat_snapshot(KAGGLE) == kaggle_pipeline.before  # nothing changed, added or removed


MODEL = ROOT / "models" / "best.pt"
CARD_METRICS = ROOT / "models" / "metrics.json"


def assert_card_figures_reproduce(data_yaml: Path, key: str, project: Path, form: str | None = None) -> None:
    """val.py, as models/README.md documents it, gives the figures models/metrics.json quotes under `key` (of
    card['forms'][form] with `form`: its model, with --augment where the form was measured so)."""
    import json

    import pandas as pd

    card = json.loads(CARD_METRICS.read_text())
    quoted_figures = card["forms"][form] if form else card
    weights = ROOT / quoted_figures["weights"] if form else MODEL
    flags = ["--augment"] if form and quoted_figures.get("augment") else []
    tolerance = 0.002
    if form and form.startswith("int8"):
        quoted_figures, tolerance = int8_figures_for_this_cpu(quoted_figures)
    proc = subprocess.run([sys.executable, str(ROOT / "val.py"), "--weights", str(weights), "--data", str(data_yaml),
                           "--split", "test", "--imgsz", str(card["imgsz"]), "--project", str(project), *flags],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    measured = pd.read_csv(project / "exp" / "metrics.csv", index_col="class")
    for cls, figures in quoted_figures[key].items():
        for metric, quoted in figures.items():
            assert measured.loc[cls, metric] == pytest.approx(quoted, abs=tolerance), f"{key}: {cls} {metric}"


# OpenVINO's INT8 kernels are not the same on every CPU, and neither are their figures (each is the same run after
# run on one CPU): the card's come from an Intel Xeon with AMX; an AMD EPYC with VNNI but no AMX gives figures up
# to 0.011 away (the rare class's mAP50-95; 0.002 for mAP50 over all classes); one with AVX2 alone up to 0.04 (the
# rare class's precision at the operating point), so the card records that CPU's own table. The fp32 figures
# hold to 0.002 anywhere.
INT8_VNNI_TOLERANCE = 0.012


def int8_kernels() -> str:
    """The INT8 kernels OpenVINO's CPU plugin takes here, by the best instructions the CPU has for them."""
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return "unknown"
    for kernels, flag in (("amx", "amx_int8"), ("avx512_vnni", "avx512_vnni"), ("avx512", "avx512f"), ("avx_vnni", "avx_vnni"),
                          ("avx2", "avx2")):
        if flag in flags:
            return kernels
    return "other"


def int8_figures_for_this_cpu(form_figures: dict) -> tuple[dict, float]:
    """The INT8 figures this CPU must reproduce, and to what: the card's own on AMX (where they were measured), a
    table measured with this CPU's kernels where the card has one (by_cpu), the card's to INT8_VNNI_TOLERANCE on
    VNNI; on any other CPU the card has nothing to hold it to."""
    kernels = int8_kernels()
    if kernels == "amx":
        return form_figures, 0.002
    if kernels in form_figures.get("by_cpu", {}):
        return form_figures["by_cpu"][kernels], 0.002
    if kernels == "avx512_vnni":
        return form_figures, INT8_VNNI_TOLERANCE
    pytest.skip(f"the card has no INT8 figures measured with OpenVINO's {kernels} kernels (this CPU's): measure them "
                "with val.py and add them under forms.<form>.by_cpu in models/metrics.json")


needs_card = pytest.mark.skipif(not MODEL.exists() or not CARD_METRICS.exists(), reason="no shipped model and metrics in models/")


@needs_card
def test_the_model_cards_test_figures_reproduce(kaggle_pipeline, tmp_path):
    """The evaluation command models/README.md documents gives the figures it quotes."""
    assert_card_figures_reproduce(kaggle_pipeline.data_yaml, "test", tmp_path)


@needs_card
def test_the_model_cards_test_figures_without_twins_reproduce(kaggle_pipeline, tmp_path):
    """The test split less the photos with a twin in train or val (near_duplicates.csv) gives the card's
    `test_without_twins` figures, leaving out the photos the card lists."""
    import json

    from maskdet.evaluation.twins import TWINS_CSV, photos_with_a_twin, write_split_without

    card = json.loads(CARD_METRICS.read_text())
    if "test_without_twins" not in card:
        pytest.skip("models/metrics.json has no test_without_twins yet: python bench/model_accuracy.py --card writes it")
    if not TWINS_CSV.exists():
        pytest.skip(f"no {TWINS_CSV}")
    subset = write_split_without(kaggle_pipeline.data_yaml, "test", photos_with_a_twin(TWINS_CSV), tmp_path / "subset")
    assert sorted(subset.left_out) == sorted(card["twins"]["left_out"])
    assert subset.kept == card["twins"]["images"] == EXPECTED_IMAGES["test"] - len(subset.left_out)
    assert_card_figures_reproduce(subset.data_yaml, "test_without_twins", tmp_path / "runs")


@needs_card
@pytest.mark.parametrize("form", ["int8", "int8_augment"])
def test_the_model_cards_int8_figures_reproduce_alone_and_with_augment(kaggle_pipeline, tmp_path, form):
    """The INT8 default's test figures, and detect.py --augment's (val.py --augment), are the card's. The second
    scores the per-frame step itself: it holds only while that step keeps every face NMS finds up to --max-det
    and every class over --conf, as Ultralytics' validator does."""
    pytest.importorskip("openvino", reason="the INT8 model needs pip install openvino")
    import json

    if form not in json.loads(CARD_METRICS.read_text()).get("forms", {}):
        pytest.fail(f"models/metrics.json has no forms.{form}: python bench/model_accuracy.py --card models/metrics.json --add ...")
    assert_card_figures_reproduce(kaggle_pipeline.data_yaml, "test", tmp_path, form)


@needs_card
def test_tiles_find_most_small_test_faces_on_a_1080p_frame_where_the_whole_frame_finds_none(kaggle_pipeline, tmp_path):
    """Issue 24's scene: the test split's own faces shrunk to 22 px on 1920x1080 frames (bench/tiles.py). Fitted
    whole to the model they are 8 px and none is found; in 480-px tiles most are, none twice (the model card
    quotes 82.5 % for the INT8 default)."""
    import json

    out = tmp_path / "tiles.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "tiles.py"), "--data", kaggle_pipeline.data_yaml,
                           "--split", "test", "--tile", "480", "--json", out], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    whole, tiled = figures["results"]["whole frame"], figures["results"]["tile 480"]
    assert figures["faces"] >= 200 and whole["recall"] <= 0.02
    assert tiled["recall"] >= 0.75 and tiled["twice"] == 0 and tiled["right_class"] >= 0.9 * tiled["found"]
