"""CSV cells: text a spreadsheet would run as a formula is written as text, in every CSV the project writes."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from maskdet.csvcells import FORMULA_STARTS, SafeDictWriter, safe_cell, safe_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_text_starting_like_a_formula_gets_an_apostrophe(start):
    assert safe_cell(f"{start}HYPERLINK(\"http://x\")") == f"'{start}HYPERLINK(\"http://x\")"


@pytest.mark.parametrize("value", ["people.jpg", "a=b.png", "", " =x", 3, -1, -0.5, 1.5, None])
def test_plain_text_and_numbers_are_left_alone(value):
    assert safe_cell(value) == value


def test_the_dict_writer_neutralises_header_and_rows_and_reads_back_as_text():
    out = io.StringIO()
    writer = SafeDictWriter(out, ["source", "x1"])
    writer.writeheader()
    writer.writerows([{"source": "=1+1", "x1": -3.5}, {"source": "@SUM(A1)", "x1": 2}])
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows == [{"source": "'=1+1", "x1": "-3.5"}, {"source": "'@SUM(A1)", "x1": "2"}]


def test_a_table_has_its_labels_and_text_cells_neutralised():
    pd = pytest.importorskip("pandas")
    table = pd.DataFrame({"=cls": ["-cmd", "ok"], "n": [-1, 2]}, index=pd.Index(["+a", "b"], name="split"))
    text = safe_table(table).to_csv()
    assert text.splitlines() == ["split,'=cls,n", "'+a,'-cmd,-1", "b,ok,2"]


def test_every_csv_the_package_writes_goes_through_csvcells():
    """A new CSV writer must use SafeDictWriter or safe_table: this lists the ones that do not."""
    unsafe = []
    for path in (ROOT / "maskdet").rglob("*.py"):
        if path.name == "csvcells.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"csv\.(writer|DictWriter)\(", line) or (".to_csv(" in line and "safe_table(" not in line):
                unsafe.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert unsafe == []
