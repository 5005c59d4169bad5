"""The shipped model's card figures (models/metrics.json, reproduced by test_kaggle_integration.py) meet issue 16's bar."""

from __future__ import annotations

import json
from pathlib import Path

CARD = Path(__file__).resolve().parents[2] / "models" / "metrics.json"
BAR = {("all", "mAP50"): 0.80, ("all", "mAP50-95"): 0.52, ("without_mask", "mAP50"): 0.80,
       ("mask_weared_incorrect", "mAP50"): 0.55}


def test_the_shipped_models_test_figures_meet_the_bar():
    test = json.loads(CARD.read_text(encoding="utf-8"))["test"]
    short = {f"{cls} {metric}": test[cls][metric] for (cls, metric), bar in BAR.items() if test[cls][metric] < bar}
    assert not short, f"below the bar: {short}"


def test_the_card_is_measured_at_the_size_detect_py_runs():
    from maskdet.config import INFERENCE_IMGSZ

    assert json.loads(CARD.read_text(encoding="utf-8"))["imgsz"] == INFERENCE_IMGSZ


# Issue 23: the INT8 model may be the default only this close to the fp32 export it was quantized from.
INT8_MARGIN = {("all", "mAP50"): 0.01, ("all", "mAP50-95"): 0.01, ("mask_weared_incorrect", "mAP50"): 0.03}


def test_the_default_int8_model_stays_within_the_margin_of_fp32_on_val_and_test():
    from maskdet.inference.detect import DEFAULT_WEIGHTS_ORDER

    forms = json.loads(CARD.read_text(encoding="utf-8"))["forms"]
    int8, fp32 = forms["int8"], forms["onnx"]
    assert DEFAULT_WEIGHTS_ORDER[0].name == Path(int8["weights"]).name  # the figures are the default model's
    for split in ("val", "test", "test_without_twins"):
        lost = {f"{split} {cls} {metric}": round(fp32[split][cls][metric] - int8[split][cls][metric], 4)
                for (cls, metric), margin in INT8_MARGIN.items()
                if fp32[split][cls][metric] - int8[split][cls][metric] > margin}
        assert not lost, f"INT8 lost more than the margin against fp32: {lost}"


def test_the_docs_quote_the_overall_map50_rounded_once_from_the_card():
    # metrics.json keeps 4 decimals (0.8395); rounding that again gives 0.840, above what was measured.
    card = json.loads(CARD.read_text(encoding="utf-8"))["test"]["all"]["mAP50"]
    once = f"{int(card * 1000) / 1000:.3f}"  # 0.8395 -> 0.839: what a 3-decimal figure of the measurement says
    root = CARD.parents[1]
    for doc in (root / "README.md", root / "models" / "README.md"):
        text = doc.read_text(encoding="utf-8")
        assert f"**{once}**" in text, doc
        twice = f"{card:.3f}"
        if twice != once:
            assert f"{twice}**" not in text and f"against {twice}" not in text, doc
