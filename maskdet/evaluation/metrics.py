"""One readable metrics table (P, R, mAP50, mAP50-95 overall and per class) from Ultralytics' validator."""

from __future__ import annotations

import pandas as pd

from maskdet.config import MAP_CONF, MAP_IOU  # noqa: F401 (their home before config.py; imported from here too)


def metrics_table(metrics, names: dict[int, str] | list[str], images: int | None = None) -> pd.DataFrame:
    """Precision, recall, mAP50, mAP50-95 overall and per class (classes absent from the split included)."""
    names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
    box = metrics.box
    nt_class = getattr(metrics, "nt_per_class", None)
    nt_image = getattr(metrics, "nt_per_image", None)
    rows = [{"class": "all", "images": images, "instances": int(nt_class.sum()) if nt_class is not None else None,
             "P": box.mp, "R": box.mr, "mAP50": box.map50, "mAP50-95": box.map}]
    evaluated = {int(c): i for i, c in enumerate(box.ap_class_index)}
    for cls, name in names.items():
        row = {"class": name,
               "images": int(nt_image[cls]) if nt_image is not None else None,
               "instances": int(nt_class[cls]) if nt_class is not None else None}
        if cls in evaluated:
            p, r, ap50, ap = box.class_result(evaluated[cls])
            row.update({"P": p, "R": r, "mAP50": ap50, "mAP50-95": ap})
        else:
            row.update({"P": float("nan"), "R": float("nan"), "mAP50": float("nan"), "mAP50-95": float("nan")})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("class")
    return table.astype({"instances": "Int64", "images": "Int64"})


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")




def step_table(result, images: int) -> pd.DataFrame:
    """The same table for maskdet.evaluation.pipeline_map's PipelineMap (val.py --augment): the per-frame step
    scored as Ultralytics scores a model; overall P and R are the class means, as there."""
    rows = [{"class": "all", "images": images, "instances": sum(result.instances.values()),
             "P": _mean(result.precision), "R": _mean(result.recall), "mAP50": result.map50, "mAP50-95": result.map50_95}]
    for name in result.names:
        nan = float("nan")
        rows.append({"class": name, "images": result.images_with.get(name, 0), "instances": result.instances.get(name, 0),
                     "P": result.precision.get(name, nan), "R": result.recall.get(name, nan),
                     "mAP50": result.ap50.get(name, nan), "mAP50-95": result.ap50_95.get(name, nan)})
    return pd.DataFrame(rows).set_index("class").astype({"instances": "Int64", "images": "Int64"})


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values) if values else float("nan")
