"""--privacy counts: people by verdict per period, the only thing such a run keeps (decree 2021-269).

A person is counted in the period in which they were first seen (seconds into their source); every period
the source has reached has a row, 0 people included. The
table is rewritten atomically whenever a person is counted: it is a row per period, never a row
per person, so it stays small (a day at 20 minutes is 72 rows) and a kill -9 leaves a whole file.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from maskdet.csvcells import SafeDictWriter
from maskdet.fileio import atomic_write_text
from maskdet.settings import COUNTS_PERIOD_S

PERIOD_S = COUNTS_PERIOD_S  # --period's default
COMPLIANT = "with_mask"


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Period:
    source: str
    index: int  # period number since the start of the source
    counts: Counter = field(default_factory=Counter)  # verdict -> people
    until: str = ""  # wall-clock time of the last update (what --retain ages the row by)


class PeriodCounts:
    """Counts per (source, period); rows() in the order the periods were first seen."""

    def __init__(self, names: tuple[str, ...], period_s: float = PERIOD_S):
        self.names = names
        self.period_s = period_s
        self.periods: dict[tuple[str, int], Period] = {}
        self.reached: dict[str, int] = {}  # source -> the last period it has had a row for

    def reach(self, source: str, time_s: float) -> bool:
        """Give every period of `source` up to `time_s` its row, people or not: a period nobody walked through is
        a count of 0, which a missing row cannot tell from a gap in the data. True when a row was added."""
        last = int(max(0.0, time_s) // self.period_s)
        first = self.reached.get(source, -1) + 1
        for index in range(first, last + 1):
            self.periods.setdefault((source, index), Period(source, index, until=now_iso()))
        self.reached[source] = max(last, first - 1)
        return last >= first

    def add(self, source: str, time_s: float, verdict: str) -> None:
        key = (source, int(max(0.0, time_s) // self.period_s))
        period = self.periods.setdefault(key, Period(*key))
        period.counts[verdict] += 1
        period.until = now_iso()

    def prune(self, keep) -> None:
        """Drop the periods `keep(period)` says no (--retain)."""
        self.periods = {k: p for k, p in self.periods.items() if keep(p)}

    def fields(self) -> list[str]:
        return ["source", "period", "start_s", "end_s", "people", *self.names, "mask_share", "until"]

    def rows(self) -> list[dict]:
        out = []
        for p in self.periods.values():
            people = sum(p.counts.values())
            share = p.counts.get(COMPLIANT, 0) / people if people else None
            out.append({"source": p.source, "period": p.index, "start_s": round(p.index * self.period_s, 3),
                        "end_s": round((p.index + 1) * self.period_s, 3), "people": people,
                        **{n: p.counts.get(n, 0) for n in self.names},
                        "mask_share": None if share is None else round(share, 4), "until": p.until})
        return out

    def totals(self) -> Counter:
        total: Counter = Counter()
        for p in self.periods.values():
            total.update(p.counts)
        return total

    def save(self, csv_path: Path, json_path: Path) -> None:
        rows = self.rows()
        buffer = io.StringIO()
        writer = SafeDictWriter(buffer, self.fields())  # source names come from outside: no formulas
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(csv_path, buffer.getvalue())
        atomic_write_text(json_path, json.dumps({"period_s": self.period_s, "periods": rows}, indent=1) + "\n")
