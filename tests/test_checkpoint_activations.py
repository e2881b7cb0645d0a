"""--checkpoint-activations: the ResNet's blocks keep only their inputs for backward and run again there;
the gradients, the trained weights and exact resume are the same as without it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit import rundir
from vaekit.errors import VaekitError
from vaekit.nn.resnet import ResNetDecoder, ResNetEncoder
from vaekit.train.acceleration import recomputed_activations


class Pair(torch.nn.Module):
    def __init__(self, shape, **args):
        super().__init__()
        torch.manual_seed(0)
        self.encoder, self.decoder = ResNetEncoder(shape, **args), ResNetDecoder(6, shape, 1, **args)
        self.head = torch.nn.Linear(self.encoder.out_dim, 6) if self.encoder.out_dim else None


def step(pair, x, recompute):
    """Gradients of one squared-error reconstruction, and how many tensors autograd kept for backward."""
    pair.zero_grad()
    kept = []
    with recomputed_activations(pair, recompute), \
            torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        h = pair.encoder(x)
        z = pair.head(h) if pair.head is not None else h[:, : h.shape[1] // 2]
        ((pair.decoder(z) - x) ** 2).sum().backward()
    return [p.grad.clone() for p in pair.parameters()], len(kept)


@pytest.mark.parametrize("shape, args", [
    ((3, 15, 17), dict(widths=[4, 8, 8], blocks=1, attention=True, dense=8)),    # vector latent, odd sizes
    ((3, 16, 16), dict(widths=[8, 16], blocks=2, attention=True, latent_channels=2)),  # autoencoder-kl layout
])
def test_gradients_are_bit_for_bit_those_without_recomputing(shape, args):
    # the backward graph is the same one; only its saved tensors are computed a second time, by the same
    # kernels on the same inputs, so each gradient is the same float sum in the same order
    pair = Pair(shape, **args)
    x = torch.rand(3, *shape)
    plain, kept_plain = step(pair, x, False)
    again, kept_again = step(pair, x, True)
    assert all(torch.equal(a, b) for a, b in zip(plain, again))
    assert kept_again < kept_plain / 3  # the blocks' activations were not kept
    assert "forward" not in pair.encoder.down_blocks[0].resnets[0].__dict__  # the class's forward again


def test_each_norm_and_silu_is_recomputed_inside_its_recomputed_block():
    """Nested units: inside a block's (or the decoder head's) recomputation its GroupNorm + SiLU runs once more,
    so the norm's output is not held through the block's backward (the gradients stay bit for bit, above)."""
    pair = Pair((3, 8, 8), widths=[4, 8], blocks=1, dense=4)
    block = pair.decoder.up_blocks[-1].resnets[0]
    with recomputed_activations(pair, True):
        assert {"forward", "norm_act"} <= set(block.__dict__) and "head_act" in pair.decoder.__dict__
        # a level's last block and its sampling are one unit (blocks.last_with_sampler), each not one of its own
        for level in (pair.encoder.down_blocks[0], pair.decoder.up_blocks[0]):
            assert "last" in level.__dict__ and "forward" not in level.resnets[-1].__dict__
            assert "norm_act" in level.resnets[-1].__dict__
    assert not {"forward", "norm_act"} & set(block.__dict__)


SMALL = dict(network="resnet", widths=[8, 16], blocks=1, dense=16, latent_dim=4, progress=False, model="vae",
             batch_size=32, seed=3)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    path = tmp_path_factory.mktemp("rgb") / "rgb.npy"
    np.save(path, np.random.default_rng(0).random((72, 3, 16, 16), dtype=np.float32))
    return str(path)


def weights(run):
    return load_file(str(run / rundir.WEIGHTS))


def test_training_and_exact_resume_match_the_run_without_it(rgb, tmp_path):
    vaekit.train(rgb, out=tmp_path / "plain", epochs=2, attention=True, **SMALL)
    vaekit.train(rgb, out=tmp_path / "resumed", epochs=1, attention=True, checkpoint_activations=True, **SMALL)
    vaekit.train(out=tmp_path / "resumed", resume=True, epochs=2, progress=False)  # on, as saved in the run
    assert vaekit.open_run(tmp_path / "resumed").config.train.checkpoint_activations
    a, b = weights(tmp_path / "plain"), weights(tmp_path / "resumed")
    assert set(a) == set(b) and not [k for k in a if not torch.equal(a[k], b[k])]


def test_spatial_latent_run_and_the_set_path(rgb, tmp_path):
    spatial = dict(SMALL, latent_channels=2, epochs=1)
    vaekit.train(rgb, out=tmp_path / "plain", **spatial)
    vaekit.train(rgb, out=tmp_path / "on", sets=["train.checkpoint_activations=true"], **spatial)
    a, b = weights(tmp_path / "plain"), weights(tmp_path / "on")
    assert not [k for k in a if not torch.equal(a[k], b[k])]


def test_a_network_without_blocks_is_refused_before_writing(rgb, tmp_path):
    with pytest.raises(VaekitError, match="--checkpoint-activations: the networks .*MLP.*--network resnet"):
        vaekit.train(rgb, out=tmp_path / "r", recipe="mlp", epochs=1, checkpoint_activations=True, progress=False)
    assert not (tmp_path / "r" / rundir.WEIGHTS).exists()


def test_a_recomputing_run_hands_freed_memory_back(monkeypatch):
    """With --checkpoint-activations the trainer has glibc hand freed blocks back (vaekit.malloc, whose own test
    counts the page faults), so resident memory follows what is live; without it malloc is left alone."""
    from types import SimpleNamespace

    from vaekit import malloc
    from vaekit.train.acceleration import accelerated

    calls = []
    monkeypatch.setattr(malloc, "return_freed_memory", lambda: calls.append(True) or True)
    pair = Pair((3, 8, 8), widths=[4, 8], blocks=1, dense=4)
    for on in (False, True):
        with accelerated(pair, SimpleNamespace(precision="fp32", compile=False, checkpoint_activations=on),
                         torch.device("cpu")):
            assert calls == [True] * on
