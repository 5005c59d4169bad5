"""data.yaml: where the dataset lives and which classes it has."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from maskdet.errors import UserError
from maskdet.fileio import read_user_text

SPLITS = ("train", "val", "test")
TRAINING_SPLITS = ("train", "val")  # the splits training needs photos in (Ultralytics fits on train, measures on val)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_YAML = PROJECT_ROOT / "data.yaml"
# Inference size of the shipped model, chosen on the val split (models/README.md): the default for
# evaluation, export, benchmarks and .pt detection.
INFERENCE_IMGSZ = 704
MAX_STRIDE = 32  # the coarsest output of a YOLO detector: input sizes are multiples of it
# The usual mAP settings for val.py: a low threshold, as mAP integrates over all confidences.
MAP_CONF, MAP_IOU = 0.001, 0.7


@dataclass(frozen=True)
class DatasetConfig:
    """A parsed data.yaml with every path made absolute (relative paths are relative to the yaml)."""

    yaml_path: Path
    root: Path
    names: tuple[str, ...]
    split_images: dict[str, Path]

    @property
    def class_ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def images_dir(self, split: str) -> Path:
        return self.split_images[split]

    def labels_dir(self, split: str) -> Path:
        return labels_dir_for(self.split_images[split])


def labels_dir_for(images_dir: Path) -> Path:
    """Ultralytics' rule (img2label_paths): the last /images/ in the path becomes /labels/; a folder
    with no images/ in its path keeps its labels beside the images, never in a sibling labels/."""
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return images_dir


def class_id_of_key(key: object) -> int:
    """A key under `names:` as a class id: a whole number, or one written as text ('0'). 0.5 or True is no id
    (int() would make them 0 and 1, and the name under them would then be looked up under a key it lacks)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    raise ValueError(key)


def parse_names(raw: object, where: Path, line: int | None = None) -> tuple[str, ...]:
    """Accept both Ultralytics forms, `{0: a, 1: b}` and `[a, b]`; ids must be 0..n-1. `line`: where 'names' is."""
    values = raw if isinstance(raw, list) else list(raw.values()) if isinstance(raw, dict) else []
    if any(isinstance(n, (list, dict)) for n in values):
        raise UserError("each class name under 'names' must be plain text, not a list or a mapping", where, line)
    if isinstance(raw, list):
        names = [str(n) for n in raw]
    elif isinstance(raw, dict):
        try:
            by_id = {class_id_of_key(k): v for k, v in raw.items()}
        except ValueError as exc:
            raise UserError(f"class ids under 'names' must be integers, got {exc.args[0]!r}", where, line) from None
        if len(by_id) != len(raw):
            raise UserError("a class id is given twice under 'names' (as 0 and '0'?)", where, line)
        ids = sorted(by_id)
        if ids != list(range(len(ids))):
            raise UserError(f"class ids under 'names' must be 0..{len(ids) - 1}, got {ids}", where, line)
        names = [str(by_id[k]) for k in ids]
    else:
        raise UserError("'names' must be a list or a mapping of id: name", where, line)
    if not names:
        raise UserError("'names' lists no classes", where, line)
    if len(set(names)) != len(names):
        raise UserError(f"class names repeat: {names}", where, line)
    return tuple(names)


# A data.yaml is a few hundred bytes; one from a downloaded dataset is read only up to this size.
MAX_YAML_BYTES = 1_000_000


class _PlainYamlLoader(yaml.SafeLoader):
    """YAML without anchors and aliases (&a / *a): a data.yaml has no use for them, and nested aliases (a
    'billion laughs' file of a few hundred bytes) expand to gigabytes when the value is printed or walked."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&name, *name) are not accepted here",
                                              event.start_mark)
        return super().compose_node(parent, index)


def safe_load_yaml(text: str):
    """yaml.safe_load for text from outside, without anchors or aliases (see _PlainYamlLoader)."""
    return yaml.load(text, Loader=_PlainYamlLoader)  # noqa: S506 (a SafeLoader subclass)


def yaml_error_line(exc: Exception) -> int | None:
    """The 1-based line a YAML parser error points at, when it says."""
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def load_yaml_mapping(path: str | Path) -> dict:
    return load_yaml_mapping_with_lines(path)[0]


def top_level_key_lines(text: str) -> dict[object, int]:
    """The 1-based line of each top-level key of a YAML mapping, for errors about its value."""
    try:
        node = yaml.compose(text, Loader=_PlainYamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def load_yaml_mapping_with_lines(path: str | Path) -> tuple[dict, dict[object, int]]:
    """A YAML file's mapping and the line of each of its top-level keys (see top_level_key_lines)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # read_user_text says why it cannot be read
    if size > MAX_YAML_BYTES:
        raise UserError(f"{size:,} bytes: too large for a dataset description (at most {MAX_YAML_BYTES:,})", path)
    text = read_user_text(path)
    try:
        data = safe_load_yaml(text)
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path, yaml_error_line(exc)) from None
    if not isinstance(data, dict):
        raise UserError("expected a mapping (key: value lines)", path)
    return data, top_level_key_lines(text)


def read_dataset_yaml(path: Path) -> tuple[dict, tuple[str, ...], Path]:
    """A data.yaml's mapping, class names and dataset root (its `path:`, relative to the yaml)."""
    data, lines = load_yaml_mapping_with_lines(path)
    if "names" not in data:
        raise UserError("no 'names' (the class list)", path)
    names = parse_names(data["names"], path, lines.get("names"))
    count = data.get("nc")
    if count is not None and count != len(names):  # which is right? training would go by the names without a word
        raise UserError(f"'nc: {str(count)[:20]}' but {len(names)} names ({', '.join(names)}): give nc the number of "
                        "names, or leave nc out", path, lines.get("nc"))
    value = data.get("path")
    if value is not None and not isinstance(value, str):
        raise UserError(f"'path' must be a folder path, got {str(value)[:100]!r}", path, lines.get("path"))
    root = Path(value or ".")
    return data, names, root if root.is_absolute() else (path.parent / root).resolve()


def load_dataset_config(path: str | Path = DEFAULT_DATA_YAML) -> DatasetConfig:
    """Read data.yaml; splits it does not name are simply absent (test is optional)."""
    path = Path(path).resolve()
    data, names, root = read_dataset_yaml(path)
    split_images = {}
    for split in SPLITS:
        value = data.get(split)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UserError(f"'{split}' must be one folder path (lists are not supported here)", path,
                            top_level_key_lines(read_user_text(path)).get(split))
        folder = Path(value)
        split_images[split] = folder if folder.is_absolute() else (root / folder)
    return DatasetConfig(yaml_path=path, root=root, names=names, split_images=split_images)


def read_class_list(path: str | Path) -> list[str]:
    """A classes.txt / predefined_classes.txt: one name a line, blank lines ignored (UserError if unreadable)."""
    return [line.strip() for line in read_user_text(path).splitlines() if line.strip()]


def class_list_mismatch(found: list[str], expected: tuple[str, ...]) -> str | None:
    """Describe how a classes.txt disagrees with data.yaml, or None when ids mean the same classes.

    A classes.txt that lists the data.yaml classes in order and then extra names is still a
    problem: boxes of the extra classes get ids data.yaml does not have.
    """
    if tuple(found) == expected:
        return None
    for i, (a, b) in enumerate(zip(found, expected)):
        if a != b:
            return f"id {i} is '{a}' here but '{b}' in data.yaml"
    if len(found) > len(expected):
        return f"extra classes not in data.yaml: {found[len(expected):]}"
    return None  # a prefix of data.yaml's list: every id it assigns means the same class


def parse_class_map(pairs: list[str] | None) -> dict[str, str]:
    """`--map old=new` pairs, e.g. `mask=with_mask no-mask=without_mask`."""
    mapping = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UserError(f"--map expects OLD=NEW, got {pair!r}")
        mapping[old.strip()] = new.strip()
    return mapping
