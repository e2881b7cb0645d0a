"""How many examples a pass without gradients (validation, evaluation, encoding) takes at once: 512 for small
examples, fewer for large images (vaekit.data.batching.inference_batch_size)."""
from __future__ import annotations

import pytest
import torch

from vaekit.config import ModelConfig, Part
from vaekit.data.batching import inference_batch_size
from vaekit.data.types import TensorData
from vaekit.models import build_model
from vaekit.objectives import ELBO
from vaekit.train.distributed import Dist
from vaekit.train.validation import validate


@pytest.mark.parametrize("shape, most, expected", [
    ((64,), 512, 512), ((1, 8, 8), 512, 512), ((1, 28, 28), 512, 512), ((1, 28, 28), 1024, 1024),
    ((2048,), 512, 512), ((2049,), 512, 256), ((3, 32, 32), 512, 256), ((1, 64, 64), 512, 256),
    ((3, 48, 48), 512, 128), ((3, 64, 64), 512, 64), ((3, 64, 64), 32, 32), ((3, 256, 256), 512, 4),
    ((3, 1024, 1024), 512, 1)])
def test_known_batch_sizes(shape, most, expected):
    assert inference_batch_size(shape, most=most) == expected


def test_data_gives_its_examples_shape():
    assert inference_batch_size(TensorData(torch.zeros(2, 3, 64, 64))) == 64


class _Counting(ELBO):
    """The ELBO, noting the size of every batch it is given."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def __call__(self, model, x, c=None, kl_weight=1.0):
        self.sizes.append(x.shape[0])
        return super().__call__(model, x, c, kl_weight)


def test_validation_of_a_resnet_on_48_px_colour_images_takes_batches_below_512():
    torch.manual_seed(0)
    model = build_model(ModelConfig(network=Part("resnet", {"widths": [4, 8], "blocks": 1, "dense": 8}),
                                    latent_dim=2, likelihood=Part("bernoulli"), data_shape=[3, 48, 48]))
    objective, data = _Counting(), TensorData(torch.rand(130, 3, 48, 48))
    terms = validate(model, objective, data, Dist())
    assert objective.sizes == [128, 2] and all(torch.isfinite(torch.tensor(v)) for v in terms.values())
