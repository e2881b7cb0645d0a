"""Sample quality: Fréchet distance and k-NN precision/recall of model samples against test data.

``fd`` compares them in the feature space of a small classifier vaekit trains on the labelled
training split (see :mod:`.features`); ``fid`` is the standard Inception FID, given the
Inception weights file. Both sample as many examples as they take from the scored split (all of
it, up to ``n``); a conditional model samples with the labels of those examples, so the class
mix matches. Samples are the means of p(x|z), as ``vaekit sample`` draws them; images are
clipped to [0, 1].
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from ..data.types import TensorData
from ..errors import VaekitError
from ..models.helpers import evaluating
from ..registry import METRICS
from .base import EvalContext, Metric
from .features import extract, feature_net
from .frechet import frechet_distance_of, precision_recall
from .inception import FIDInceptionV3, load_inception

FEATURE_SEED = 0  # the feature net's seed: one feature space per dataset, whatever --seed is
PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
PAPERS = "Heusel et al. 2017 (Fréchet distance); Kynkäänniemi et al. 2019 (precision and recall, k-NN)"


def pick(data: TensorData, n: int, seed: int) -> TensorData:
    """All of ``data`` if it has at most n examples, else n of them drawn with ``seed``."""
    if len(data) <= n:
        return data
    return data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n])


def sample_features(model, real: TensorData, seed: int, featurize: Callable[[torch.Tensor], torch.Tensor],
                    batch_size: int = 500) -> torch.Tensor:
    """``featurize`` of len(real) model samples, a batch at a time (N, D); a conditional model
    gets real's labels. Only one batch of samples is held at once."""
    out = []
    devices = [model.device] if model.device.type == "cuda" else []
    with evaluating(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, len(real), batch_size):
            c = real.c[start:start + batch_size] if model.conditioned else None
            x = model.sample(min(batch_size, len(real) - start), c).float()
            out.append(featurize(x.clamp(0, 1) if x.dim() == 4 else x))
    return torch.cat(out)


def compare(prefix: str, real: torch.Tensor, fake: torch.Tensor, k: int, features: str) -> Dict[str, object]:
    """The keys every sample-quality metric returns, from features (N, D) of both sets."""
    precision, recall = precision_recall(real, fake, k)
    return {prefix: frechet_distance_of(real, fake), f"{prefix}_precision": precision,
            f"{prefix}_recall": recall, f"{prefix}_n": int(real.shape[0]), f"{prefix}_features": features}


def meanings_of(prefix: str, distance: str, space: str, features: str) -> Dict[str, str]:
    return {prefix: f"{distance} of samples to the data, {space} (lower is better)",
            f"{prefix}_precision": f"share of samples within the data's k-NN manifold, {space} (fidelity, 0..1)",
            f"{prefix}_recall": f"share of the data within the samples' k-NN manifold, {space} (diversity, 0..1)",
            f"{prefix}_n": "samples compared, as many as data examples",
            f"{prefix}_features": f"the feature extractor: {features}"}


class SampleQuality(Metric):
    requires = ("sample",)
    paper = PAPERS

    def __init__(self, n: int = 10000, k: int = 3):
        if int(n) < 2:
            raise VaekitError(f"option n of {self.name} must be at least 2, got {n}")
        if int(k) < 1:
            raise VaekitError(f"option k of {self.name} must be at least 1, got {k}")
        self.n, self.k = int(n), int(k)

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        reason = super().unavailable(model, data, ctx)
        if reason:
            return reason
        if min(len(data), self.n) <= self.k:
            return f"{self.title} needs more than k={self.k} examples to compare with; the data has {len(data)}"
        if model.num_classes and data.y is None:
            return (f"{self.title} samples a conditional model with the labels of the evaluated data, "
                    "and it has none")
        return None


@METRICS.register("fd")
class FrechetDistance(SampleQuality):
    """Fréchet distance, precision and recall in the features of vaekit's classifier (``fd_*``)."""

    name, title = "fd", "fd (sample quality in a trained classifier's features)"
    meanings = dict(meanings_of("fd", "Fréchet distance", "classifier features",
                                "vaekit-classifier:<dataset>:<training-data hash>, its accuracy"),
                    fd_classifier_accuracy="accuracy of the feature classifier on the evaluated data (0..1)")

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        reason = super().unavailable(model, data, ctx)
        train = ctx.train if ctx is not None else None
        if reason or train is None:
            return reason or f"{self.title} needs the training split, to train its feature classifier"
        if train.y is None:
            other = ("; for images, use fid with an Inception weights file instead (--metrics fid "
                     "--fid-weights PATH)") if train.x.dim() == 4 else ""
            return (f"{self.title} needs class labels, to train its feature classifier, and the training "
                    f"split has none{other}")
        return None

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, object]:
        real = pick(data, self.n, ctx.seed)
        name = str(ctx.source or (ctx.info.name if ctx.info else None) or "data")
        classes = ctx.info.num_classes if ctx.info else None
        net, ident, _ = feature_net(ctx.reference_data(), name, classes, seed=FEATURE_SEED)
        real_f, predicted = extract(net, real.x)
        fake_f = sample_features(model, real, ctx.seed, lambda x: extract(net, x)[0])
        accuracy = None if real.y is None else float((predicted == real.y.cpu()).double().mean())
        said = "unknown (the data has no labels)" if accuracy is None else f"{accuracy:.3f}"
        result = compare("fd", real_f, fake_f, self.k, f"{ident}, accuracy {said} on the evaluated data")
        if accuracy is not None:
            result["fd_classifier_accuracy"] = accuracy
        return result


@METRICS.register("fid")
class InceptionFID(SampleQuality):
    """FID (Heusel et al. 2017) in the 2048-d pool features of the FID Inception network.

    ``weights``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` or torch-fidelity's
    ``weights-inception-2015-12-05-6726825d.pth`` (torchmetrics downloads the latter).
    ``preprocess``: ``"pytorch-fid"`` (default) or ``"torch-fidelity"`` (also torchmetrics'),
    the resize and scaling each of them applies (see :class:`FIDInceptionV3`).
    """

    name, title = "fid", "fid (Inception FID)"
    meanings = meanings_of("fid", "Fréchet distance (FID)", "Inception features",
                           "Inception weights file and preprocessing")
    shortcuts = {"--fid-weights": "weights"}

    def __init__(self, weights: Optional[str] = None, n: int = 10000, k: int = 3,
                 preprocess: str = "pytorch-fid", batch_size: int = 50):
        super().__init__(n, k)
        if preprocess not in FIDInceptionV3.PREPROCESS:
            raise VaekitError(f"option preprocess of fid must be one of {', '.join(FIDInceptionV3.PREPROCESS)}, "
                              f"got {preprocess!r}")
        self.weights = None if weights in (None, "") else Path(weights).expanduser()
        self.preprocess, self.batch_size = preprocess, max(1, int(batch_size))

    def unavailable(self, model, data: TensorData, ctx: EvalContext) -> Optional[str]:
        if data.x.dim() != 4 or data.x.shape[1] not in (1, 3):
            return f"{self.title} needs grey or RGB images; for other data use fd"
        if self.weights is None:
            return (f"{self.title} needs the Inception weights file: download {PYTORCH_FID_URL} "
                    f"and pass it with `vaekit evaluate RUN --metrics {self.name} --fid-weights PATH` "
                    f"(Python: options={{'{self.name}': {{'weights': PATH}}}})")
        if not self.weights.is_file():
            return f"{self.title}: the Inception weights file {self.weights} does not exist"
        return super().unavailable(model, data, ctx)

    @torch.no_grad()
    def features(self, net: FIDInceptionV3, x: torch.Tensor, device) -> torch.Tensor:
        """Pool features (N, 2048) float64; grey images are repeated to 3 channels."""
        out = []
        for start in range(0, x.shape[0], self.batch_size):
            b = x[start:start + self.batch_size].to(device).float()
            out.append(net(b.expand(-1, 3, -1, -1)).double().cpu())
        return torch.cat(out)

    def __call__(self, model, data: TensorData, ctx: EvalContext) -> Dict[str, object]:
        real = pick(data, self.n, ctx.seed)
        net = load_inception(self.weights, self.preprocess).to(model.device)
        real_f = self.features(net, real.x, model.device)
        fake_f = sample_features(model, real, ctx.seed, lambda x: self.features(net, x, model.device),
                                 self.batch_size)
        ident = f"inception-v3:{self.weights.name}, {self.preprocess} preprocessing"
        return compare("fid", real_f, fake_f, self.k, ident)
