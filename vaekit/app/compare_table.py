"""``vaekit compare``'s table: short, distinct run names as headers, numbers never cut, as many tables
as the runs need to fit the terminal's width, and why a metric does not apply to a run."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

from rich.markup import escape
from rich.table import Table

from ..evaluate import meanings

NOT_APPLICABLE = "n/a"


def run_names(paths: Sequence[str]) -> List[str]:
    """The shortest distinct trailing parts of the run paths: ``a/x``, ``b/x`` -> ``a/x``, ``b/x``;
    ``/tmp/n1``, ``/tmp/n2`` -> ``n1``, ``n2``."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = 1
    while True:
        names = [str(Path(*p[-depth:])) for p in parts]
        if len(set(names)) == len(names) or all(depth >= len(p) for p in parts):
            return names
        depth += 1


def cells(rows: List[dict], names: List[str], keys: List[str], show) -> Tuple[List[List[str]], List[str]]:
    """The table's text by key and run ("n/a" where a metric does not apply, "-" where nothing was
    computed), and the notes that say why, one per run (named ``names``) and metric."""
    notes, columns = [], []
    for name, row in zip(names, rows):
        missing = row.get("not_applicable", [])
        na_keys = set(meanings(missing))
        columns.append([show(row[k]) if k in row else (NOT_APPLICABLE if k in na_keys else "-") for k in keys])
        for metric in missing:
            if any(k in keys for k in meanings([metric])):
                reason = row.get("why_not", {}).get(metric, "it does not apply to this run")
                notes.append(f"{NOT_APPLICABLE}: {metric} for {name}: {reason}")
    return columns, notes


def tables(rows: List[dict], keys: List[str], title: str, width: int, show) -> Tuple[List[Table], List[str]]:
    """One or more tables, the metric names in the first column and as many runs beside them as fit in
    ``width`` columns; no cell is ever cut."""
    names = run_names([row["run"] for row in rows])
    columns, notes = cells(rows, names, keys, show)
    key_width = max(len("metric"), *(len(k) for k in keys))
    widths = [max(len(n), *(len(c) for c in col)) for n, col in zip(names, columns)]
    groups: List[List[int]] = [[]]
    used = key_width + 4  # borders and padding of the first column
    for i, w in enumerate(widths):
        if groups[-1] and used + w + 3 > width:
            groups.append([])
            used = key_width + 4
        groups[-1].append(i)
        used += w + 3
    out = []
    for n, group in enumerate(groups, 1):
        part = f" ({n} of {len(groups)})" if len(groups) > 1 else ""
        table = Table(title=escape(title + part))
        table.add_column("metric", no_wrap=True, min_width=key_width)
        for i in group:
            table.add_column(escape(names[i]), justify="right", no_wrap=True, min_width=widths[i])
        for r, key in enumerate(keys):
            table.add_row(escape(key), *(escape(columns[i][r]) for i in group))
        out.append(table)
    return out, notes

