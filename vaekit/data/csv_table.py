"""CSV/TSV tables: numeric feature columns plus an optional label column.

The first row is a header unless every cell in it is a number (then columns are named
"0", "1", ...). Empty cells count as missing and are reported, never filled in silently.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import VaekitError, require
from .arrays import RawData, to_table


def read_csv(path: Path, name: str, label_column: Optional[str] = None) -> RawData:
    """Read a table; ``label_column`` values become class indices by sorted unique value."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = []  # (line number, cells), blank lines skipped
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append((reader.line_num, row))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise VaekitError(f"could not read CSV {name}: {e}; check that it is a UTF-8 text table") from None
    require(rows, f"CSV {name} is empty; it needs a header row and at least one data row")

    first = [c.strip() for c in rows[0][1]]
    has_header = not all(_is_number(c) for c in first)
    columns = first if has_header else [str(i) for i in range(len(first))]
    body = rows[1:] if has_header else rows
    require(body, f"CSV {name} has a header but no data rows; it needs at least one example")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    require(not dupes, f"CSV {name} has duplicate column names {dupes}; give every column a unique name")
    for line, row in body:
        require(len(row) == len(columns),
                f"CSV {name} line {line} has {len(row)} fields but the table has {len(columns)} columns; "
                "fix that line (check for stray commas or quotes)")

    label_idx = None
    if label_column is not None:
        require(str(label_column) in columns,
                f"CSV {name} has no column '{label_column}' (label_column); its columns are: {', '.join(columns)}")
        label_idx = columns.index(str(label_column))
    features = [i for i in range(len(columns)) if i != label_idx]
    require(features, f"CSV {name} has no feature columns besides the label column '{label_column}'")

    lines = np.array([line for line, _ in body])
    x = np.empty((len(body), len(features)), dtype=np.float64)
    for r, (line, row) in enumerate(body):
        for j, i in enumerate(features):
            cell = row[i].strip()
            try:
                x[r, j] = float(cell) if cell else np.nan
            except ValueError:
                raise VaekitError(
                    f"CSV {name} column '{columns[i]}' is not numeric (value {cell!r} on line {line}); "
                    f"only numeric feature columns are supported: drop or encode that column, or pass "
                    f"--label-column {columns[i]} (label_column='{columns[i]}' in Python) if it holds the labels"
                ) from None
    feature_names = [columns[i] for i in features]
    x = to_table(x, f"CSV {name}", columns=feature_names, row_numbers=lines)

    y = class_names = None
    if label_idx is not None:
        values = [row[label_idx].strip() for _, row in body]
        for line, v in zip(lines, values):
            require(v != "", f"CSV {name} has an empty label in column '{label_column}' on line {line}; "
                             "give every row a label or drop the row")
        numeric = all(_is_number(v) for v in values)
        class_names = sorted(set(values), key=(lambda v: (float(v), v)) if numeric else None)
        lookup = {c: k for k, c in enumerate(class_names)}
        y = np.array([lookup[v] for v in values], dtype=np.int64)
    return RawData(name, "table", x, y, num_classes=None if y is None else len(class_names),
                   class_names=class_names, columns=feature_names,
                   extra={"path": str(path), "label_column": label_column})


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
