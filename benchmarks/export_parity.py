"""Every zoo variant, trained tiny (tests/conftest.py's sizes, 1 epoch on digits), exported in each format:
the max abs difference from PyTorch at batch 1 and 17 that ``vaekit export`` measured (export.json), or why not.

    .venv/bin/python benchmarks/export_parity.py   # writes benchmarks/results/export_parity.{json,md}
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import SPEED, variant_options  # noqa: E402  (the suite's small sizes, defined once)

FORMATS = ("onnx", "torchscript", "exported-program")


def main() -> None:
    from vaekit.app import api
    from vaekit.errors import VaekitError
    from vaekit.export.writers import export_run
    from vaekit.zoo import ZOO

    rows, root = [], Path(tempfile.mkdtemp(prefix="export-parity-"))
    for variant in ZOO:
        out = root / variant.name
        api.train_run("digits", out=out, model=variant.name, epochs=1, batch_size=256, progress=False,
                      sets=SPEED.get(variant.name, []), **variant_options(variant.name))
        for fmt in FORMATS:
            start = time.perf_counter()
            try:
                spec = json.loads((export_run(out, fmt, root / f"{variant.name}-{fmt}") / "export.json").read_text())
                diff = {b: max(spec[w]["max_abs_diff"][b] for w in ("encoder", "decoder"))
                        for b in ("batch 1", "batch 17")}
                row = {"variant": variant.name, "format": fmt, **diff, "why_not": None}
            except VaekitError as e:
                row = {"variant": variant.name, "format": fmt, "batch 1": None, "batch 17": None, "why_not": str(e)}
            row["seconds"] = round(time.perf_counter() - start, 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    results = HERE / "results"
    (results / "export_parity.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_table(rows, results / "export_parity.md")


def write_table(rows, path: Path) -> None:
    """One row per variant: each format's max abs difference at batch 1 / batch 17, or why it does not export."""
    by = {}
    for r in rows:
        cell = r["why_not"] or f"{r['batch 1']:.1e} / {r['batch 17']:.1e}"
        by.setdefault(r["variant"], {})[r["format"]] = cell
    lines = ["| variant | " + " | ".join(f"{f} (batch 1 / 17)" for f in FORMATS) + " |",
             "|---|" + "---|" * len(FORMATS)]
    lines += [f"| {v} | " + " | ".join(cells.get(f, "") for f in FORMATS) + " |" for v, cells in by.items()]
    path.write_text("\n".join(lines) + "\n")

if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:  # the Markdown again from the saved JSON
        write_table(json.loads((HERE / "results" / "export_parity.json").read_text()),
                    HERE / "results" / "export_parity.md")
    else:
        main()
