"""What an exported model says about itself is outside input: class names and input size are bounded and
checked before use, and a model that lies gets a one-line error (maskdet/inference/model_metadata.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdet.errors import UserError
from maskdet.inference.model_metadata import NAMES_TEXT_LIMIT, imgsz_from_metadata, names_from_metadata

MODEL = Path("model.onnx")
ASTRONAUT = Path(__file__).resolve().parents[2] / "samples" / "images" / "astronaut.jpg"


@pytest.mark.parametrize("raw", ["{0: 'with_mask', 1: 'without_mask'}", "['with_mask', 'without_mask']",
                                 {1: "without_mask", 0: "with_mask"}, ["with_mask", "without_mask"]])
def test_class_names_are_read_as_ultralytics_writes_them_in_id_order(raw):
    assert names_from_metadata(raw, MODEL) == ("with_mask", "without_mask")


@pytest.mark.parametrize("raw, says", [
    (None, "no class names"),
    ("{0: 'mask', 1: ", "cannot be read"),
    ("[" * 20 + "]" * 20, "not a list of names"),                # nested lists: a structure, not names
    ("(" * 1000 + ")" * 1000, "cannot be read"),                  # past the parser's nesting limit
    ({0: ["a", "b"], 1: "mask"}, "not a list of names"),
    ([True, False], "not a list of names"),
    ("[" + "'x', " * NAMES_TEXT_LIMIT + "]", f"over {NAMES_TEXT_LIMIT:,} characters"),  # bounded before parsing
])
def test_class_names_that_are_not_a_list_of_names_are_a_clear_error(raw, says):
    with pytest.raises(UserError, match=says):
        names_from_metadata(raw, MODEL)


@pytest.mark.parametrize("raw, size", [("[640, 640]", 640), ([704, 704], 704), (320, 320), ("[32, 32]", 32)])
def test_the_input_size_is_read_from_a_list_an_int_or_its_text(raw, size):
    assert imgsz_from_metadata(raw, MODEL) == size


@pytest.mark.parametrize("raw", ["abc", "[100000, 100000]", [16], "[]", [], True, "9" * 200, None, {"h": 640}])
def test_an_input_size_outside_32_to_8192_or_unreadable_asks_for_imgsz(raw):
    with pytest.raises(UserError, match="is not 32 to 8192 pixels: give --imgsz"):
        imgsz_from_metadata(raw, MODEL)


def test_detect_refuses_an_onnx_model_whose_class_names_are_a_structure_in_one_line(detect, kit, tools, tmp_path):
    import onnx

    path = kit.write_scripted_onnx(tmp_path / "liar.onnx", [], 64)
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == "names":
            prop.value = str({0: [[["with_mask"] * 9] * 9] * 9, 1: "without_mask", 2: "mask_weared_incorrect"})
    onnx.save(proto, str(path))
    proc = detect("--source", ASTRONAUT, "--weights", path, timeout=60)
    tools.assert_one_line_error(proc, path, "not a list of names")
