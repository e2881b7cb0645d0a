"""A CLI that answers at once: help, the option table and the zoo load without torch, while the public
API and every registry stay whole (benchmarks/startup.py measures the times)."""
from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> str:
    # gc.freeze() at the end: the interpreter's last collections over torch's import graph are no part of a start
    done = subprocess.run([sys.executable, "-c", code + "\nimport gc\ngc.freeze()\n"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["models"], ["models", "--json"]])
def test_help_and_models_do_not_import_torch(argv):
    out = _python(f"""
import sys
from vaekit.app.cli import app
sys.argv = ["vaekit"] + {argv!r}
try:
    app()
except SystemExit as e:
    assert not e.code, e.code
loaded = [m for m in ("torch", "matplotlib") if m in sys.modules]
assert not loaded, ("imported", loaded)
""")
    assert "vae" in out


def test_the_option_table_and_the_zoo_need_no_torch():
    _python("import sys, vaekit.app.options, vaekit.zoo, vaekit.registry; assert 'torch' not in sys.modules")


def test_the_public_api_is_whole_when_first_reached():
    _python("""
import inspect, types
import vaekit
assert vaekit.MODELS.get("ladder").__name__ == "LadderVAE" and "vamp" in vaekit.PRIORS.names()
import vaekit.train.optimizers  # the subpackage of the same name leaves vaekit.train the function
from vaekit import train
assert train is vaekit.train and inspect.isfunction(train) and not isinstance(train, types.ModuleType)
assert vaekit.VAE is vaekit.models.VAE and vaekit.load is vaekit.app.api.load
assert set(vaekit.__all__) <= set(dir(vaekit))
for name in vaekit.__all__:
    getattr(vaekit, name)
""")


def test_each_registry_lists_exactly_what_its_homes_register():
    """The built-in names (listed without torch) are the parts that importing a registry's homes
    registers; checked in a fresh process, first each registry right after loading its own homes."""
    _python("""
from vaekit import registry
regs = [r for r in vars(registry).values() if isinstance(r, registry.Registry)]
for reg in regs:
    reg.load()
    assert set(reg.builtin) <= set(reg._items), (reg.kind, set(reg.builtin) - set(reg._items))
for reg in regs:
    assert sorted(reg._items) == reg.names(), (reg.kind, "update its built-in names in vaekit/registry.py")
""")
