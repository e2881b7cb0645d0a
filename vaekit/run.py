"""``vaekit.open_run``: the handle on a run directory, apart from the network it trained.

As scvi-tools keeps its user handle (``SCVI``) apart from its module (``VAE``), a :class:`Run`
holds what a run is (its directory, config, the data info, checkpoints, evaluations, samplers)
and its model, which stays a bare ``nn.Module``: nothing is attached to the model. The app
layer, metrics and plots get what they need from the handle. Every file is read through
:mod:`vaekit.rundir`.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from torch import nn

from . import rundir
from .config import RunConfig
from .data.types import DataInfo
from .models import Model
from .models.load import data_info, load, local_run
from .samplers import Sampler, build_sampler


class Run:
    """A run directory and what it holds. ``model`` is loaded from ``checkpoint`` on first use
    (or given, as :func:`vaekit.train` does); ``info`` describes its training data."""

    def __init__(self, path, config: Optional[RunConfig] = None, model: Optional[Model] = None,
                 info: Optional[DataInfo] = None, checkpoint: str = "last", device: str = "cpu",
                 encoder: Optional[nn.Module] = None, decoder: Optional[nn.Module] = None):
        self.dir = local_run(path)  # hf://ORG/NAME: the Hub snapshot's folder
        self.config = config if config is not None else rundir.read_config(self.dir)  # checks it is a run
        self.checkpoint = checkpoint
        self._model, self._info, self._device, self._networks = model, info, device, (encoder, decoder)
        self.warnings: List[str] = []  # what training found worth saying (a collapsed latent), for the CLI
        self.test_data = None  # the test split when training has it loaded: the end-of-training plots reuse it

    @property
    def info(self) -> DataInfo:
        """The :class:`DataInfo` of the run's training data: its kind, shape, classes, a table's statistics."""
        if self._info is None:
            self._info = data_info(self.config)
        return self._info

    @property
    def model(self) -> Model:
        """The trained network (eval mode), loaded from the run's ``checkpoint`` weights on first use."""
        if self._model is None:
            encoder, decoder = self._networks
            self._model = load(self.dir, checkpoint=self.checkpoint, device=self._device, encoder=encoder,
                               decoder=decoder, config=self.config)
        return self._model

    @property
    def name(self) -> str:
        """The zoo variant the run trained (``vaekit models``)."""
        return self.config.model.variant

    @property
    def objective(self) -> str:
        """The name of the objective the run trained with."""
        return self.config.train.objective.name

    def weights(self, checkpoint: Optional[str] = None) -> Path:
        """The weights file of ``checkpoint`` (default the handle's own): "last", "best" or "raw" (with --ema
        the weights as trained; without it, the same file as "last")."""
        checkpoint = checkpoint or self.checkpoint
        rundir.require_checkpoint(checkpoint)
        if checkpoint == "raw":
            return rundir.checkpoint_file(self.dir, checkpoint)
        return self.dir / rundir.CHECKPOINTS[checkpoint]

    def metrics(self, events: bool = False) -> List[dict]:
        """The rows of metrics.jsonl, one per epoch (and the training events with ``events``)."""
        return rundir.read_metrics(self.dir / rundir.METRICS, events=events)

    @property
    def evaluations(self) -> dict:
        """What ``vaekit evaluate`` saved in evaluation.json, keyed by data, split, checkpoint and seed."""
        return rundir.read_evaluations(rundir.evaluation_path(self.dir))

    @property
    def samplers(self) -> List[str]:
        """The names of the samplers fitted to this run (``vaekit fit-sampler``)."""
        return rundir.fitted_samplers(self.dir)

    def load_sampler(self, name: str = "gmm") -> Sampler:
        """The sampler ``name`` fitted to this run, ready to ``sample(n)`` or ``generate(model, n)``; ``prior``
        (the model's own) needs no fit. Refused if the run's weights changed since it was fitted."""
        from .registry import SAMPLERS

        SAMPLERS.get(name)  # an unknown name is refused before any file is read
        if name == "prior" and not rundir.sampler_files(self.dir, name)[0].is_file():
            return build_sampler("prior", self.model.latent_dim).use(self.model)
        fitted = rundir.read_sampler(self.dir, name, self.model.latent_dim, lambda dim, args: build_sampler(
            name, dim, args))
        return fitted.use(self.model) if fitted.needs_model else fitted

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, {self.name}, checkpoint={self.checkpoint!r})"


def open_run(path, checkpoint: str = "last", device: str = "cpu", encoder: Optional[nn.Module] = None,
             decoder: Optional[nn.Module] = None) -> Run:
    """The handle on the run in ``path`` (a folder, or ``"hf://ORG/NAME"`` pushed with ``vaekit push``), with its
    model loaded from ``checkpoint`` onto ``device``: "last", "best", or "raw" (a run trained with --ema keeps
    its averaged weights in the first two and the weights as trained in "raw"; without --ema, "raw" is
    "last"); a run trained with your own encoder/decoder needs the same modules again.

    >>> run = vaekit.open_run("runs/digits")  # doctest: +SKIP
    >>> run.config.train.epochs, run.info.shape, run.evaluations, run.samplers  # doctest: +SKIP
    """
    run = Run(path, checkpoint=checkpoint, device=device, encoder=encoder, decoder=decoder)
    run.model  # noqa: B018  (loaded now: a missing or damaged checkpoint is an error here)
    return run


def as_run(run, checkpoint: str = "last") -> Run:
    """A :class:`Run` from a run directory (its model from ``checkpoint``), or the handle itself (the model
    loads when first used)."""
    if isinstance(run, Run):
        return run
    rundir.require_checkpoint(checkpoint)
    return Run(rundir.require_run(run), checkpoint=checkpoint)
