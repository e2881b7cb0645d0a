"""The traversal and interpolation plots (vaekit.plots.traversal): the latent points they walk,
that the pictures are decode() of those points, and the PNGs they write."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.app.workflows import run_data
from vaekit.errors import VaekitError
from vaekit.plots.traversal import (MARGIN, choose_pairs, interpolation_grid, interpolation_path, plot_interpolation,
                                    plot_traversal, prior_location_scale, traversal_grid)

from conftest import run_cli


@pytest.fixture(scope="module")
def run(mlp_run):
    """The session's 2-D MLP VAE (a standard-normal prior) and its test split."""
    handle = vaekit.open_run(mlp_run)
    return handle.model, run_data(handle, None, "test")


def decoded(model, z, c=None):
    with torch.no_grad():
        return model.decode(z, c).mean


def png_size(path):
    with Image.open(path) as im:
        return im.size


# -- traversal -------------------------------------------------------------------------------
def test_traversal_sweeps_one_dim_and_shows_decode_of_those_points(run):
    model, data = run
    z0 = torch.tensor([0.4, -0.7])
    images, z = traversal_grid(model, z0, dims=[1, 0], n=7)
    assert images.shape == (2, 7, 1, 8, 8) and z.shape == (2, 7, 2)
    sweep = torch.linspace(-3, 3, 7)                       # N(0, I) prior: mean 0, sd 1
    assert torch.equal(z[0, :, 1], sweep) and torch.all(z[0, :, 0] == 0.4)    # row 0 varies dim 1 only
    assert torch.equal(z[1, :, 0], sweep) and torch.all(z[1, :, 1] == -0.7)
    assert torch.allclose(images, decoded(model, z.reshape(-1, 2)).reshape(images.shape), atol=1e-6)
    assert (images[0, 0] - images[0, -1]).abs().max() > 0.05   # the decoder does read the latent


def test_traversal_row_of_a_dim_the_decoder_ignores_is_constant(run):
    model, data = run
    deaf = copy.deepcopy(model)
    first = next(m for m in deaf.decoder.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.weight[:, 1] = 0.0                          # the decoder no longer reads z[1]
    images, _ = traversal_grid(deaf, torch.tensor([0.4, -0.7]), dims=[1, 0], n=5)
    assert torch.allclose(images[0], images[0, :1].expand_as(images[0]), atol=1e-6)
    assert (images[1, 0] - images[1, -1]).abs().max() > 0.05


def test_traversal_spans_a_non_standard_prior_in_its_own_units(run):
    model, _ = run
    wide = copy.deepcopy(model)
    wide.prior.scale.fill_(2.0)                            # N(0, 4 I): the sweep doubles
    wide.prior.loc.fill_(1.0)
    loc, scale = prior_location_scale(wide)
    assert torch.equal(loc, torch.ones(2)) and torch.equal(scale, 2 * torch.ones(2))
    _, z = traversal_grid(wide, torch.zeros(2), dims=[0], n=3)
    assert z[0, :, 0].tolist() == [-5.0, 1.0, 7.0]


def test_traversal_png_has_one_row_per_dim_and_n_columns(run, tmp_path):
    model, data = run
    for n in (4, 9):
        path = plot_traversal(model, data, tmp_path / f"t{n}.png", n=n)
        cell = 8 * 8 + 6                                   # 8x8 digits enlarged to 64 px, 6 px apart
        assert png_size(path) == (n * cell - 6 + MARGIN[0], 2 * cell - 6 + MARGIN[1])
    with pytest.raises(VaekitError, match="at least 2"):
        plot_traversal(model, data, tmp_path / "bad.png", n=1)
    with pytest.raises(VaekitError, match="only applies to a conditional VAE"):
        plot_traversal(model, data, tmp_path / "bad.png", label=3)


# -- interpolation ---------------------------------------------------------------------------
def test_interpolation_paths_linear_and_slerp():
    za, zb = torch.tensor([[1.0, 0.0], [2.0, 2.0]]), torch.tensor([[0.0, 1.0], [4.0, 4.0]])
    line = interpolation_path(za, zb, n=3)
    assert torch.equal(line[:, 0], za) and torch.equal(line[:, -1], zb)
    assert torch.allclose(line[:, 1], (za + zb) / 2)
    arc = interpolation_path(za, zb, n=3, mode="slerp")
    assert torch.equal(arc[:, 0], za) and torch.allclose(arc[:, -1], zb)
    assert torch.allclose(arc[0, 1], torch.tensor([math.sqrt(0.5)] * 2))     # on the unit circle
    assert torch.allclose(arc[1], line[1])                 # parallel endpoints: the straight line
    with pytest.raises(VaekitError, match="linear or slerp"):
        interpolation_path(za, zb, mode="cubic")


def test_choose_pairs_is_seeded_disjoint_and_same_class_on_request():
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    pairs = choose_pairs(y, 10, pairs=8)
    assert len(pairs) == 5 and len({i for p in pairs for i in p}) == 10 and pairs == choose_pairs(y, 10, 8)
    same = choose_pairs(y, 10, pairs=8, same_class=True)
    assert len(same) == 4 and all(y[a] == y[b] for a, b in same)   # classes of 4, 3, 3: 2 + 1 + 1 pairs
    assert all(y[a] == 0 and y[b] == 0 for a, b in choose_pairs(y, 10, 8, same_class=True, label=0))


def test_interpolation_endpoints_decode_the_endpoints_means(run, tmp_path):
    model, data = run
    xa, images, xb, z, pairs = interpolation_grid(model, data, n=6, pairs=3)
    assert images.shape == (3, 6, 1, 8, 8) and len(pairs) == 3
    assert torch.equal(xa, data.x[[a for a, _ in pairs]]) and torch.equal(xb, data.x[[b for _, b in pairs]])
    with torch.no_grad():
        za, zb = model.embed(xa), model.embed(xb)
    assert torch.allclose(z[:, 0], za) and torch.allclose(z[:, -1], zb)
    assert torch.allclose(images[:, 0], decoded(model, za), atol=1e-6)
    assert torch.allclose(images[:, -1], decoded(model, zb), atol=1e-6)
    assert torch.allclose(images, decoded(model, z.reshape(-1, 2)).reshape(images.shape), atol=1e-6)
    path = plot_interpolation(model, data, tmp_path / "i.png", n=6, pairs=3)
    cell = 70                                                   # 64 px and a 6 px gap
    width = 64 + 3 + (6 * cell - 6) + 3 + 64    # original | band | path | band | original
    assert png_size(path) == (width + MARGIN[0], 3 * cell - 6 + MARGIN[1])


# -- through the command line and for a conditional model ------------------------------------
def test_plot_command_writes_both(mlp_run, capsys):
    for kind in ("traversal", "interpolation"):
        code, _, err = run_cli(["plot", mlp_run, kind, "--n", "5"], capsys)
        assert code == 0, err
        assert png_size(mlp_run / "plots" / f"{kind}.png")[0] > 5 * 64


def test_conditional_model_decodes_with_the_label(cvae_run, tmp_path):
    handle = vaekit.open_run(cvae_run)
    model, data = handle.model, run_data(handle, None, "test")
    xa, images, xb, z, pairs = interpolation_grid(model, data, n=4, pairs=3, label=7)
    assert all(int(data.y[a]) == int(data.y[b]) == 7 for a, b in pairs)
    c = torch.full((12,), 7)
    assert torch.allclose(images.reshape(12, 1, 8, 8), decoded(model, z.reshape(12, -1), c), atol=1e-6)
    for label in (None, 2):
        assert png_size(plot_traversal(model, data, tmp_path / "t.png", n=3, label=label))[1] == 3 * 70 - 6 + MARGIN[1]
        plot_interpolation(model, data, tmp_path / "i.png", n=3, label=label)
    images, _ = traversal_grid(model, torch.zeros(3), [0], n=3, label=2)
    assert torch.allclose(images[0], decoded(model, torch.tensor([[-3.0, 0, 0], [0, 0, 0], [3, 0, 0]]),
                                             torch.full((3,), 2)), atol=1e-6)
    assert not np.allclose(images.numpy(), traversal_grid(model, torch.zeros(3), [0], n=3, label=5)[0].numpy())
