"""The Python floor in pyproject.toml holds for vaekit's code: vermin finds no newer construct."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def declared_floor() -> tuple:
    """(3, 10) from ``requires-python = ">=3.10"`` in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    assert found, 'pyproject.toml has no requires-python = ">=3.N" line'
    return int(found[1]), int(found[2])


def needed_by_code() -> tuple:
    """The lowest Python 3 that vermin says runs everything in vaekit/ (its parsable format's last line,
    ``:::!2:3.10:``)."""
    # --no-parse-comments: no line of vaekit/ is exempted with a `# novermin` comment, so none is read (a fifth of
    # vermin's time); one that is added then fails here instead of passing unseen
    args = ["--no-tips", "--format", "parsable", "--no-make-paths-absolute", "--no-parse-comments", "vaekit"]
    run_vermin = "import sys, vermin; sys.argv[0] = 'vermin'; sys.exit(vermin.main())"  # it has no __main__
    done = subprocess.run([sys.executable, "-c", run_vermin, *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    version = last.split(":")[4]  # file:line:column:py2:py3:feature, the first three empty
    assert re.fullmatch(r"\d+\.\d+", version), f"vermin's summary line {last!r} names no Python 3 version"
    return tuple(int(part) for part in version.split("."))


def test_vaekit_needs_no_python_newer_than_pyproject_declares():
    needed, floor = needed_by_code(), declared_floor()
    assert needed <= floor, (f"vaekit/ needs Python {needed[0]}.{needed[1]} (vermin -vv vaekit says where) but "
                             f"pyproject.toml declares >={floor[0]}.{floor[1]}")
