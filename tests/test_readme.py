"""The README's Python example runs as written (so the documentation stays true)."""
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    block = next(b for b in blocks if "encoder=Encoder()" in b)   # the Python API section's example
    exec(compile(block, "README.md", "exec"), namespace)
    model, x, run = namespace["model"], namespace["x"], namespace["run"]
    assert x.shape == (8, 1, 8, 8) and namespace["samples"].shape == (16, 1, 8, 8)
    assert run.dir == Path("runs/mlp-digits") and run.config.train.epochs == 20 and run.info.shape == (1, 8, 8)
    assert run.evaluations == {} and run.samplers == [] and run.model.name == "vae"
    assert (tmp_path / "runs" / "custom" / "model.safetensors").exists()
    # the reloaded custom model equals the trained one
    q = model.encode(x)
    assert q.mean.shape == (8, 2) and torch.isfinite(model.decode(q.mean).mean).all()


def test_readme_sampler_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    block = next(b for b in blocks if "fit_sampler" in b)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["images"].shape == (16, 1, 8, 8) and torch.isfinite(namespace["images"]).all()
    assert namespace["codes"].shape == (1000, namespace["model"].latent_dim)
    assert (tmp_path / "runs" / "rae-digits" / "samplers" / "gmm.json").exists()
