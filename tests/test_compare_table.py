"""`vaekit compare` at 80 columns: distinct short run names, no number cut, a table per group of runs
that fit, and a run whose metric does not apply shows "n/a" with the reason instead of failing."""
import io

from rich.console import Console

import vaekit
from conftest import run_cli
from vaekit.app.compare_table import run_names, tables

FAST = ["--hidden", "32", "--batch-size", "256", "--no-plots", "--no-progress", "--epochs", "1"]


def test_run_names_are_the_shortest_distinct_tails():
    assert run_names(["/tmp/n1", "/tmp/n2"]) == ["n1", "n2"]
    assert run_names(["/x/a/run", "/x/b/run", "/y/c"]) == ["a/run", "b/run", "y/c"]
    assert run_names(["/runs/same", "/runs/same"]) == ["/runs/same"] * 2  # the same run twice: its full path


def test_many_runs_wrap_into_tables_that_fit_and_no_number_is_cut():
    rows = [{"run": f"/tmp/experiments/sweep/beta-{b}/run", "likelihood": "bernoulli", "n": 359,
             "elbo": -100.712345 - b, "log_likelihood": -98.25 - b} for b in range(7)]
    keys = ["likelihood", "n", "elbo", "log_likelihood"]
    show = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    shown, notes = tables(rows, keys, "test split, last checkpoint", 80, show)
    console = Console(file=io.StringIO(), width=80)
    for table in shown:
        console.print(table)
    text = console.file.getvalue()
    assert len(shown) > 1 and notes == []
    assert all(len(line) <= 80 for line in text.splitlines())
    for b in range(7):
        assert f"beta-{b}/run" in text and f"{-100.712345 - b:.4f}" in text and f"{-98.25 - b:.4f}" in text
    assert text.count("log_likelihood") == len(shown) and "…" not in text


def test_a_metric_that_does_not_apply_to_one_run_is_a_cell_not_a_failure(tmp_path, capsys):
    for model, where in (("ae", tmp_path / "a" / "run"), ("vae", tmp_path / "b" / "run")):
        code, _, err = run_cli(["train", "--model", model, "--out", where, *FAST], capsys)
        assert code == 0, err
    code, out, err = run_cli(["compare", tmp_path / "a" / "run", tmp_path / "b" / "run", "--metrics", "elbo"],
                             capsys)
    assert code == 0, err
    assert "a/run" in out and "b/run" in out and str(tmp_path) not in out.split("\n")[2]
    elbo_line = next(line for line in out.splitlines() if line.startswith("│ elbo"))
    assert "n/a" in elbo_line and "-" in elbo_line.split("n/a")[1]
    assert "n/a: elbo for a/run: the ELBO does not apply to the ae model" in " ".join(out.split())
    saved = vaekit.open_run(tmp_path / "a" / "run").evaluations
    assert any("elbo" in e.get("why_not", {}) for e in saved.values())
