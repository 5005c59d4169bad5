"""notebooks/train_colab.ipynb: valid, one Colab form for its settings, and every code cell runs in a CPU smoke
mode on what labeling/label.py leaves (photos with YOLO .txt labels and classes.txt), merged with Kaggle data.
What only Colab has (google.colab.drive) is stood in for by a fake that refuses what Colab refuses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import cv2
import nbformat
import pytest
from synthetic import NAMES, make_sample, write_voc_dataset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "train_colab.ipynb"
KAGGLE_PAGE = "https://www.kaggle.com/datasets/andrewmvd/face-mask-detection"


def test_the_notebook_is_valid_set_up_for_a_gpu_and_linked_from_the_readme():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["accelerator"] == "GPU"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"
    settings = next(c for c in nb.cells if c.cell_type == "code")
    assert settings.metadata.get("cellView") == "form" and settings.source.startswith("#@title Settings")
    params = [line.split("=")[0].strip() for line in settings.source.splitlines() if "#@param" in line]
    assert params == ["REPO_URL", "PHOTOS", "KAGGLE", "START_FROM", "EPOCHS", "IMGSZ", "BATCH", "OUT_FOLDER", "RESUME"]
    assert sum("#@param" in c.source for c in nb.cells if c.cell_type == "code") == 1  # one form: every setting in one place
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "https://colab.research.google.com/github/" in readme and "notebooks/train_colab.ipynb" in readme


def test_the_notebook_says_where_to_get_the_kaggle_dataset_and_in_which_forms():
    intro = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "markdown").source
    assert KAGGLE_PAGE in intro and "CC0" in intro
    assert "`.zip`" in intro and "unzipped folder" in intro


def code_cells() -> list[str]:
    return ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]


def cell_index(text: str) -> int:
    """The first code cell that contains `text` (how a test names a cell without counting them)."""
    return next(i for i, cell in enumerate(code_cells()) if text in cell)


def run_cells(namespace: dict, first: int, last: int) -> None:
    cells = code_cells()
    for i in range(first, last + 1):
        exec(compile(cells[i], f"{NOTEBOOK.name}[cell {i}]", "exec"), namespace)


def settings(monkeypatch, replace: dict[str, str] | None = None) -> dict:
    for key in ("MASKDET_MODEL", "MASKDET_SMOKE", "MASKDET_REPO", "MASKDET_PHOTOS", "MASKDET_KAGGLE", "MASKDET_DRIVE",
                "MASKDET_WORKDIR"):
        monkeypatch.delenv(key, raising=False)
    source = code_cells()[0]
    for old, new in (replace or {}).items():
        assert old in source
        source = source.replace(old, new)
    namespace: dict = {}
    exec(compile(source, f"{NOTEBOOK.name}[cell 0]", "exec"), namespace)  # settings and helpers only: runs nothing
    return namespace


def test_training_fine_tunes_the_shipped_model_by_default_or_starts_from_coco(monkeypatch):
    assert settings(monkeypatch)["MODEL"] == "models/best.pt"
    assert settings(monkeypatch, {'START_FROM = "shipped model"': 'START_FROM = "COCO"'})["MODEL"] == "yolo11n.pt"
    with pytest.raises(ValueError, match="EPOCHS must be between 1 and 1000, not 0"):
        settings(monkeypatch, {"EPOCHS = 30": "EPOCHS = 0"})
    with pytest.raises(ValueError, match="IMGSZ must be a multiple of 32"):
        settings(monkeypatch, {"IMGSZ = 640": "IMGSZ = 650"})


def write_labelled_photos(folder: Path, n: int = 8, seed: int = 100, unlabelled: int = 0) -> Path:
    """What labeling/label.py leaves: photos, a YOLO .txt beside each, and classes.txt; plus `unlabelled` photos
    nobody has labelled yet (no .txt)."""
    folder.mkdir(parents=True)
    for i in range(n + unlabelled):
        image, boxes = make_sample.make_image(seed + i)
        name = f"mine{i}" if i < n else f"unlabelled{i - n}"
        cv2.imwrite(str(folder / f"{name}.jpg"), image)
        if i < n:
            (folder / f"{name}.txt").write_text("".join(f"{b.to_line()}\n" for b in boxes))
    (folder / "classes.txt").write_text("".join(f"{n}\n" for n in NAMES))
    return folder


def zip_folder(folder: Path, archive: Path, top: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.rglob("*"):
            z.write(f, f"{top}{f.relative_to(folder)}")
    return archive


def test_drive_is_mounted_at_the_folder_drive_lives_under_as_colab_requires(tmp_path, monkeypatch):
    """Colab's drive.mount('/content/drive') makes the files appear under /content/drive/MyDrive, and refuses a
    mount point that already holds files (/content holds the clone)."""
    assert settings(monkeypatch)["DRIVE"] == Path("/content/drive/MyDrive")
    content = tmp_path / "content"  # Colab's /content, with the clone already in it
    (content / "face-mask-detector").mkdir(parents=True)
    shutil.copy(ROOT / "data.yaml", content / "face-mask-detector")
    on_drive = write_labelled_photos(tmp_path / "the-users-drive" / "my-photos", n=2)
    mounted = []

    def mount(mountpoint: str, **options) -> None:  # what google.colab.drive.mount does, as far as the notebook sees
        mountpoint = Path(mountpoint)
        if mountpoint.exists() and any(mountpoint.iterdir()):
            raise ValueError("Mountpoint must not already contain files")
        shutil.copytree(on_drive.parent, mountpoint / "MyDrive")
        mounted.append(mountpoint)

    google, colab, drive = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.drive"))
    drive.mount, colab.drive, google.colab = mount, drive, colab
    for name, module in (("google", google), ("google.colab", colab), ("google.colab.drive", drive)):
        monkeypatch.setitem(sys.modules, name, module)
    namespace = settings(monkeypatch)
    namespace.update(WORK=content, REPO=content / "face-mask-detector", DRIVE=content / "drive" / "MyDrive",
                     PHOTOS="my-photos", SMOKE=False)
    exec(compile(code_cells()[cell_index("drive.mount")], NOTEBOOK.name, "exec"), namespace)
    assert mounted == [content / "drive"]
    assert namespace["images"] == content / "drive" / "MyDrive" / "my-photos"


def test_the_photos_are_found_in_each_layout_label_py_leaves_and_in_a_zip(monkeypatch, tmp_path):
    ns = settings(monkeypatch)
    flat = write_labelled_photos(tmp_path / "flat", n=1)
    assert ns["photo_folders"](flat) == (flat, flat)
    split = tmp_path / "split"
    (split / "images").mkdir(parents=True)
    (split / "labels").mkdir()
    shutil.copy(flat / "mine0.jpg", split / "images")
    assert ns["photo_folders"](split) == (split / "images", split / "labels")
    assert ns["photo_folders"](split / "images") == (split / "images", split / "labels")
    unpacked = ns["unpack"](zip_folder(flat, tmp_path / "photos.zip", "my-photos/"), tmp_path / "unzipped")
    assert unpacked == tmp_path / "unzipped" / "my-photos" and ns["photo_folders"](unpacked)[0] == unpacked
    with pytest.raises(SystemExit, match="no photos in"):  # one line, no traceback
        ns["photo_folders"](tmp_path / "unzipped" / "nothing")


def test_another_zip_is_unpacked_afresh_not_mixed_with_or_replaced_by_the_first(monkeypatch, tmp_path):
    ns = settings(monkeypatch)
    first = zip_folder(write_labelled_photos(tmp_path / "first", n=2), tmp_path / "first.zip", "my-photos/")
    second = zip_folder(write_labelled_photos(tmp_path / "second", n=1, seed=200), tmp_path / "second.zip", "my-photos/")
    ns["unpack"](first, tmp_path / "photos")
    unpacked = ns["unpack"](second, tmp_path / "photos")  # Run all again with PHOTOS pointing at another .zip
    assert sorted(p.name for p in unpacked.iterdir()) == ["classes.txt", "mine0.jpg", "mine0.txt"]
    assert (unpacked / "mine0.jpg").read_bytes() == (tmp_path / "second" / "mine0.jpg").read_bytes()
    with pytest.raises(SystemExit, match="not a .zip archive"):
        ns["unpack"](tmp_path / "second" / "mine0.jpg", tmp_path / "photos")


def test_photos_in_subfolders_which_split_py_does_not_read_are_named_not_passed_on(monkeypatch, tmp_path, capsys):
    ns = settings(monkeypatch)
    ns["DRIVE"] = tmp_path
    ns["PHOTOS"] = "nested"
    write_labelled_photos(tmp_path / "nested" / "day1", n=1)
    with pytest.raises(SystemExit, match=r"no photos directly in .*nested, only in its subfolders \(day1\).*'nested/day1'"):
        ns["photo_folders"](tmp_path / "nested")
    assert ns["photo_folders"](tmp_path / "nested" / "day1")[0] == tmp_path / "nested" / "day1"
    write_labelled_photos(tmp_path / "both", n=1)
    write_labelled_photos(tmp_path / "both" / "day2", n=1)
    assert ns["photo_folders"](tmp_path / "both") == (tmp_path / "both", tmp_path / "both")
    assert "only the 1 photos directly in" in capsys.readouterr().out  # and not those of day2


def needs_a_git_checkout() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout: the notebook clones the repository")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("the checkout has no commit to clone yet")


def smoke_settings(monkeypatch, work: Path, drive: Path, kaggle: str) -> None:
    for key, value in {"MASKDET_SMOKE": "1", "MASKDET_REPO": str(ROOT), "MASKDET_WORKDIR": str(work),
                       "MASKDET_DRIVE": str(drive), "MASKDET_PHOTOS": "my-photos", "MASKDET_KAGGLE": kaggle}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MASKDET_MODEL", raising=False)  # the default: the shipped model, fine-tuned (in the clone: offline)


def dataset_stems(work: Path) -> set[str]:
    dataset = work / "face-mask-detector" / "data"
    return {p.stem for split in ("train", "val", "test") for p in (dataset / split / "images").iterdir()}


@pytest.mark.parametrize("kaggle", ["", "archive.zip"], ids=["photos-alone", "plain-kaggle-zip"])
def test_the_dataset_leaves_out_unlabelled_photos_and_a_fresh_kaggle_split_starts_from_coco(
        kaggle, tmp_path, monkeypatch, capfd):
    """Your photos alone (split.py) or merged with Kaggle (merge.py): a photo without a label file is listed once
    and left out either way, never trained on as a photo without faces. A plain Kaggle download (no splits/, the
    project's lists are not public) is split afresh, so the shipped model has seen most of its test photos: the
    notebook says so and starts from COCO instead."""
    needs_a_git_checkout()
    drive, work = tmp_path / "drive", tmp_path / "work"
    work.mkdir()
    write_labelled_photos(drive / "my-photos", unlabelled=2)
    if kaggle:
        plain = write_voc_dataset(tmp_path / "download")
        shutil.rmtree(plain / "splits")
        zip_folder(plain, drive / kaggle)  # as Kaggle's Download button gives it: images/ and annotations/ at the top
    smoke_settings(monkeypatch, work, drive, kaggle)

    namespace: dict = {}
    run_cells(namespace, 0, cell_index("check.py"))  # up to the dataset, checked
    out = capfd.readouterr().out
    assert "LEFT OUT: 2 of your 10 photos have no label file" in out and "unlabelled0.jpg, unlabelled1.jpg" in out
    stems = dataset_stems(work)
    assert {f"mine{i}" for i in range(8)} <= stems and not any(s.startswith("unlabelled") for s in stems)
    if not kaggle:
        assert stems == {f"mine{i}" for i in range(8)} and namespace["MODEL"] == "models/best.pt"
        return
    assert {f"face{i}" for i in range(12)} <= stems  # the .zip was unpacked and merged
    assert "NO splits/ IN" in out and "inflated" in out
    assert namespace["MODEL"] == "yolo11n.pt"  # COCO: the test figures are honest

    namespace["KAGGLE"] = "my-photos"  # a wrong folder: one line saying what KAGGLE must be, no traceback
    with pytest.raises(SystemExit, match=f"no images/ and annotations/ in it.*{KAGGLE_PAGE}"):
        run_cells(namespace, cell_index("check.py"), cell_index("check.py"))


def files_in(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_every_code_cell_runs_in_cpu_smoke_mode_on_labelimg_photos_merged_with_kaggle(tmp_path, monkeypatch, capfd):
    needs_a_git_checkout()
    drive, work = tmp_path / "drive", tmp_path / "work"
    work.mkdir()
    write_labelled_photos(drive / "my-photos", unlabelled=1)
    write_voc_dataset(drive / "kaggle-facemask")  # with the project's split lists (splits/)
    smoke_settings(monkeypatch, work, drive, "kaggle-facemask")

    namespace: dict = {}
    cells = code_cells()
    run_cells(namespace, 0, len(cells) - 1)

    stems = dataset_stems(work)
    assert {f"mine{i}" for i in range(8)} <= stems and {f"face{i}" for i in range(12)} <= stems  # both, merged
    assert "unlabelled0" not in stems and "LEFT OUT: 1 of your 9 photos" in capfd.readouterr().out
    # Trained straight into a run folder on Drive: a Colab disconnect keeps what was written.
    run1 = drive / "maskdet-runs" / "run1"
    assert (run1 / "weights" / "best.pt").stat().st_size > 1_000_000 and (run1 / "weights" / "last.pt").exists()
    assert (run1 / "weights" / "best.onnx").exists() and (run1 / "results.csv").exists()
    assert (run1 / "test").is_dir()

    # Run all again (Colab users do): a new run goes to run2, and run1 is left exactly as it was.
    before = files_in(run1)
    run_cells(namespace, cell_index("train.py"), len(cells) - 1)
    assert files_in(run1) == before
    assert (drive / "maskdet-runs" / "run2" / "weights" / "best.onnx").exists()
    # Evaluating again keeps the first test figures and this run's export.
    run_cells(namespace, cell_index("export.py"), len(cells) - 1)
    assert (drive / "maskdet-runs" / "run2" / "test2").is_dir() and (drive / "maskdet-runs" / "run2" / "test").is_dir()

    # RESUME hands that run's last.pt on Drive to train.py --resume (here a finished run: train.py says so, and the
    # notebook stops in one line); a folder that is not a run is named with the runs there are.
    capfd.readouterr()
    namespace["RESUME"] = "run1"
    with pytest.raises(SystemExit, match="stopped: train.py failed"):
        run_cells(namespace, cell_index("train.py"), cell_index("train.py"))
    captured = capfd.readouterr()
    assert f"--resume {run1 / 'weights' / 'last.pt'}" in captured.out and "nothing to resume" in captured.err
    namespace["RESUME"] = "run9"
    with pytest.raises(SystemExit, match=r"no .*run9.*last\.pt.*\(run1, run2\)"):
        run_cells(namespace, cell_index("train.py"), cell_index("train.py"))
