"""csv-stats: statistics of CSV data, a Continuum command written in Python.

Only the standard library: `csv` parses, `statistics` summarizes. componentize-py bundles
the modules imported when the component is built, so a module that the standard library
imports lazily (heapq, for Counter.most_common) is imported here up front.
"""

import csv
import heapq  # noqa: F401 -- Counter.most_common imports it lazily; see below
import io
import statistics
from collections import Counter

import wit_world
from componentize_py_types import Err
from wit_world import Column, Numeric, Summary


def _rows(text: str, delimiter: str | None) -> list[list[str]]:
    if not text.strip():
        raise Err("the CSV is empty")
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter or ","))
    rows = [r for r in rows if r]
    header = rows[0]
    if len(set(header)) != len(header):
        raise Err(f"the header repeats a column name: {header}")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise Err(f"row {i} has {len(row)} fields but the header has {len(header)}")
    return rows


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class WitWorld(wit_world.WitWorld):
    def summarize(self, csv: str, delimiter: str | None, top: int | None) -> Summary:
        rows = _rows(csv, delimiter)
        header, data = rows[0], rows[1:]
        columns = []
        for i, name in enumerate(header):
            values = [row[i].strip() for row in data]
            present = [v for v in values if v]
            numbers = [_number(v) for v in present]
            numeric = None
            if present and all(n is not None for n in numbers):
                numeric = Numeric(
                    min=min(numbers),
                    max=max(numbers),
                    mean=statistics.fmean(numbers),
                    median=float(statistics.median(numbers)),
                    stdev=statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
                )
            counts = Counter(present).most_common(3 if top is None else top)
            columns.append(
                Column(
                    name=name,
                    present=len(present),
                    missing=len(values) - len(present),
                    distinct=len(set(present)),
                    numeric=numeric,
                    top=[(value, count) for value, count in counts],
                )
            )
        return Summary(rows=len(data), columns=columns)

    def pick(self, csv: str, columns: list[str], delimiter: str | None) -> str:
        rows = _rows(csv, delimiter)
        header = rows[0]
        missing = [c for c in columns if c not in header]
        if missing:
            raise Err(f"no such column: {', '.join(missing)} (the header has {', '.join(header)})")
        picks = [header.index(c) for c in columns]
        out = io.StringIO()
        writer = csv_writer(out, delimiter or ",")
        for row in rows:
            writer.writerow([row[i] for i in picks])
        return out.getvalue()


def csv_writer(out: io.StringIO, delimiter: str):
    return csv.writer(out, delimiter=delimiter, lineterminator="\n")
