"""Write a run's encoder and decoder as ONNX, TorchScript or torch.export files, each checked against the model.

Every file is reloaded (ONNX by onnxruntime) and run on the same inputs as the PyTorch model at batch sizes
1 and 17 (the graphs are traced at 2, so both test the dynamic batch); an output further than ``TOLERANCE``
from PyTorch's refuses the export. export.json (:mod:`.contract`) records the inputs, outputs, transform,
prior and the differences measured.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from .. import __version__, rundir
from ..errors import VaekitError
from . import contract
from .graphs import Decoder, Encoder, example_inputs, export_mode, input_names

FORMATS = {"onnx": "onnx", "torchscript": "pt", "exported-program": "pt2"}  # format -> file suffix
CONTRACT = "export.json"
TOLERANCE = 1e-4
CHECK_BATCHES = (1, 17)
TRACE_BATCH = 2
EXTRA = "pip install vaekit[export]"


@contextlib.contextmanager
def quiet():
    """Exporters print progress and warn about their own internals: none of it reaches the user."""
    sink = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield sink
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def require_onnx():
    """onnx and onnxruntime, or a VaekitError naming the extra that installs them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as e:
        raise VaekitError(f"--format onnx needs {e.name}, which is not installed: {EXTRA}") from None
    return onnxruntime


def _save(fmt: str, graph: torch.nn.Module, inputs: Sequence[torch.Tensor], names: List[str], path: Path) -> None:
    if fmt == "onnx":
        outputs = list(graph.output_names)
        torch.onnx.export(graph, tuple(inputs), str(path), input_names=names, output_names=outputs,
                          dynamic_axes={n: {0: "batch"} for n in names + outputs}, opset_version=18, dynamo=False)
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.trace(graph, tuple(inputs), check_trace=False), str(path))
    else:
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(graph, tuple(inputs), dynamic_shapes=tuple({0: batch} for _ in names),
                                      strict=False)
        torch.export.save(program, str(path))


def load_runner(fmt: str, path: Path, names: List[str]) -> Callable[..., List[np.ndarray]]:
    """A function running the saved graph on torch tensors, giving numpy outputs."""
    if fmt == "onnx":
        session = require_onnx().InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda *xs: session.run(None, {n: x.cpu().numpy() for n, x in zip(names, xs)})
    module = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    return lambda *xs: [t.detach().cpu().numpy() for t in module(*xs)]


def parity(graph: torch.nn.Module, run_saved: Callable, model, which: str) -> Dict[str, float]:
    """max |saved - PyTorch| over every output, per checked batch size."""
    diffs = {}
    for batch in CHECK_BATCHES:
        inputs = example_inputs(model, which, batch, seed=batch)
        with torch.no_grad():
            expected = [t.cpu().numpy() for t in graph(*inputs)]
        got = run_saved(*inputs)
        diffs[f"batch {batch}"] = max(float(np.abs(g - e).max()) for g, e in zip(got, expected))
    return diffs


def _export_graph(fmt: str, graph, model, which: str, path: Path, where) -> dict:
    names = input_names(model, which)
    inputs = example_inputs(model, which, TRACE_BATCH)
    try:
        with quiet():
            _save(fmt, graph, inputs, names, path)
            diffs = parity(graph, load_runner(fmt, path, names), model, which)
    except VaekitError:
        raise
    except Exception as e:  # an exporter's own error: its first line, no traceback
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise VaekitError(f"run {where}: the {which} cannot be exported as {fmt} ({type(e).__name__}: {first})") from None
    worst = max(diffs.values())
    if not worst <= TOLERANCE:
        raise VaekitError(f"run {where}: the exported {which} ({fmt}) differs from PyTorch by {worst:.2g} > "
                          f"{TOLERANCE:g}; the export was not kept")
    with torch.no_grad():
        shapes = [t.shape[1:] for t in graph(*inputs)]
    return {"file": path.name,
            "inputs": [contract.io_spec(n, t.shape[1:], str(t.dtype).replace("torch.", "")) for n, t in zip(names, inputs)],
            "outputs": [contract.io_spec(n, s, "float32") for n, s in zip(graph.output_names, shapes)],
            "max_abs_diff": diffs}


def export_run(run, fmt: str, out) -> Path:
    """Write ``out``/encoder.SUFFIX, decoder.SUFFIX and export.json for the run (a path or a Run)."""
    from ..run import as_run

    if fmt not in FORMATS:
        raise VaekitError(f"--format {fmt!r} is not known; choose one of diffusers, {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    run = as_run(run)
    model = run.model
    model.require("export", "export")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VaekitError(f"--out {out} is a file; choose a folder for the exported graphs")
    rundir.require_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    with export_mode(model):
        for which, make in (("encoder", Encoder), ("decoder", Decoder)):
            graphs[which] = _export_graph(fmt, make(model), model, which, out / f"{which}.{FORMATS[fmt]}", run.dir)
        prior = contract.prior_spec(model)
    outputs = [o["name"] for o in graphs["encoder"]["outputs"]]
    cfg = run.config
    spec = {"vaekit": __version__, "format": fmt, "variant": model.name, "run": str(run.dir),
            **graphs,
            "posterior": {"name": cfg.model.posterior.name, "mean": "mean", "var": "var" if "var" in outputs else None,
                          "deterministic": bool(model.deterministic_posterior),
                          "note": contract.posterior_note(model, outputs)},
            "likelihood": {"name": cfg.model.likelihood.name, "output": "mean: E[x | z] in the model's data units"},
            "latent": {"shape": list(model.latent_shape), "dim": int(model.latent_dim)},
            "prior": prior,
            "num_classes": int(model.num_classes) if model.conditional else None,
            "class_names": run.info.class_names if model.conditional else None,
            "transform": contract.transform_spec(cfg, run.info),
            "tolerance": TOLERANCE}
    rundir.write_text(out / CONTRACT, json.dumps(spec, indent=1) + "\n")
    return out
