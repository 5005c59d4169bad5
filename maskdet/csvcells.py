"""CSV cells a spreadsheet will not run as formulas: every CSV the project writes goes through here.

Text in our CSVs comes from outside (an upload's file name, a stream URL, class names from a data.yaml):
a cell starting with = + - @ (or a tab or carriage return, which some spreadsheets skip before looking)
is read by Excel, LibreOffice and Google Sheets as a formula, e.g. =HYPERLINK(...) or a DDE call. Such a
cell gets a leading apostrophe, as OWASP advises: shown as text, and the original is still readable.
Numbers are left alone (a negative number is not a formula).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with an apostrophe in front when it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {safe_cell(key): safe_cell(value) for key, value in row.items()}


class SafeDictWriter(csv.DictWriter):
    """csv.DictWriter whose header and rows go through safe_cell."""

    def writeheader(self):
        return self.writer.writerow([safe_cell(name) for name in self.fieldnames])

    def writerow(self, rowdict: Mapping[str, Any]):
        return super().writerow({key: safe_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]):
        for row in rowdicts:
            self.writerow(row)


def safe_table(table):
    """A copy of a pandas DataFrame with safe_cell applied to its labels and cells, for `.to_csv()`."""
    return table.rename(index=safe_cell, columns=safe_cell).map(safe_cell)
