"""Tests for vaekit.plots: exact grid layout, latent projections, manifold decoding, curves, errors."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from vaekit.config import ModelConfig, Part
from vaekit.data.types import TensorData
from vaekit.errors import VaekitError
from vaekit.models.build import build_model
from vaekit.objectives import ELBO
from vaekit.plots.grid import display_pixels, grid_gap
from vaekit.plots import (active_dimensions, image_grid, latent_activity, latent_embedding, manifold_grid,
                          plot_curves, plot_latent, plot_manifold, plot_reconstructions, plot_samples,
                          read_metrics, save_image_grid)
from vaekit.plots.latent import axis_labels, subsample


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits() -> TensorData:
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return TensorData(x, torch.tensor(d.target))


def make_model(latent_dim=2, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(network=Part("mlp", {"hidden": [32]}), latent_dim=latent_dim, data_shape=[1, 8, 8])
    args.update(kw)
    return build_model(ModelConfig(**args))


@pytest.fixture(scope="module")
def trained(digits):
    """A 2-D latent VAE trained briefly on digits with the ELBO."""
    model = make_model(2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(len(digits), (128,), generator=gen)
        loss = ELBO()(model, digits.x[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def png(path):
    with Image.open(path) as im:
        im.load()
        return im.mode, im.size, np.asarray(im)


# -- grid ------------------------------------------------------------------------
def test_image_grid_places_images_and_separators():
    images = torch.zeros(5, 1, 2, 3)
    for i in range(5):
        images[i] = (i + 1) / 10
    images[4, 0, 1, 2] = 0.99
    g = image_grid(images, nrow=3, pad_value=0.5, gap=1)
    assert g.shape == (2 * 2 + 1, 3 * 3 + 2)       # 2 rows x 3 cols of 2x3 cells, 1-px separators
    assert np.allclose(g[0:2, 0:3], 0.1)            # image 0 top-left
    assert np.allclose(g[0:2, 8:11], 0.3)           # image 2 top-right
    assert np.allclose(g[2, :], 0.5)                # separator row
    assert np.allclose(g[:, 3], 0.5) and np.allclose(g[:, 7], 0.5)  # separator columns
    assert g[3 + 1, 4 + 2] == pytest.approx(0.99)   # image 4 (row 1, col 1), its pixel (1, 2)
    assert np.allclose(g[3:5, 8:11], 0.5)           # unused last cell is padding


def test_image_grid_rgb_scale_and_clipping():
    images = np.zeros((2, 3, 2, 2), dtype=np.float32)
    images[1, 0] = 2.0      # red, clipped to 1
    images[1, 2] = 0.25     # some blue
    g = image_grid(images, nrow=2, scale=2, gap=1)
    assert g.shape == (4, 4 * 2 + 1, 3)
    assert np.allclose(g[:, 5:9], [1.0, 0.0, 0.25])  # second image, enlarged 2x, channels last
    assert np.allclose(g[:, 4], 1.0)                  # white separator column
    assert np.allclose(g[:, 0:4], 0.0)


def test_image_grid_separates_cells_by_a_tenth_of_a_cell():
    """Images that fill their cells (digits touch the top and bottom) need more than a hairline
    between them to read as separate tiles: 2 px at least, a tenth of a cell above 20 px."""
    assert [grid_gap(s, s) for s in (2, 8, 28, 64, 84, 256)] == [2, 2, 3, 6, 8, 26]
    g = image_grid(torch.zeros(4, 1, 64, 64), nrow=2, pad_value=0.5)
    assert g.shape == (2 * 64 + 6, 2 * 64 + 6)
    assert np.allclose(g[64:70, :], 0.5) and np.allclose(g[:, 64:70], 0.5) and np.allclose(g[70:, 70:], 0.0)
    assert image_grid(torch.zeros(2, 1, 4, 4), nrow=2, gap=0).shape == (4, 8)
    with pytest.raises(VaekitError, match="gap at least 0"):
        image_grid(torch.zeros(2, 1, 4, 4), gap=-1)


def test_display_pixels_are_the_pngs_8_bit_values_in_rgb():
    """The figure plots hand imshow 8-bit RGB: grey copied to three channels, rounded and clipped as
    write_png writes a grid."""
    grey = np.array([[0.0, 0.5, 1.0], [-0.2, 0.2, 1.7]], dtype=np.float32)
    px = display_pixels(grey)
    assert px.dtype == np.uint8 and px.shape == (2, 3, 3)
    assert np.array_equal(px[..., 0], [[0, 128, 255], [0, 51, 255]])
    assert np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 0], px[..., 2])
    rgb = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    assert np.array_equal(display_pixels(rgb), np.round(rgb * 255).astype(np.uint8))


def test_image_grid_rejects_bad_shapes():
    with pytest.raises(VaekitError, match="1 \\(grey\\) or 3 \\(RGB\\) channels"):
        image_grid(torch.zeros(4, 2, 8, 8))
    with pytest.raises(VaekitError, match="no images"):
        image_grid(torch.zeros(0, 1, 8, 8))


def test_save_image_grid_upscales_digits_to_a_legible_png(digits, tmp_path):
    path = save_image_grid(digits.x[:64], tmp_path / "grid.png", nrow=8)
    mode, size, px = png(path)
    assert mode == "L" and size == (8 * 70 - 6, 8 * 70 - 6)   # 8x8 digits become 64x64 cells (x8), 6 px apart
    expected = np.round(digits.x[1, 0].numpy() * 255)
    assert np.array_equal(px[0:64:8, 70:134:8], expected)      # image 1, sampled once per source pixel
    assert np.array_equal(px[0:64, 70:134], np.kron(expected, np.ones((8, 8))))
    assert (px[64:70, :] == 255).all() and (px[:, 64:70] == 255).all()
    assert os.listdir(tmp_path) == ["grid.png"]                # no temp file left behind

    rgb = save_image_grid(torch.rand(3, 3, 64, 64), tmp_path / "rgb.png", nrow=3)
    mode, size, _ = png(rgb)
    assert mode == "RGB" and size == (3 * 70 - 6, 64)          # 64 px is legible: no upscaling


# -- latent map ------------------------------------------------------------------
def test_identity_embedding_for_2d_latent(trained, digits):
    data = digits.subset(torch.arange(200))
    points, desc = latent_embedding(trained, data, method="tsne")
    assert desc == {"method": "identity"}
    assert np.allclose(points, trained.encode(data.x).mean.detach().numpy(), atol=1e-6)
    assert axis_labels(desc) == ("z[0]", "z[1]")


def test_pca_embedding_matches_sklearn_on_posterior_means(digits):
    model = make_model(4)
    points, desc = latent_embedding(model, digits, method="pca", batch_size=500)   # several batches
    means = model.encode(digits.x).mean.detach().numpy()
    pca = PCA(n_components=2).fit(means)
    assert np.allclose(points, pca.transform(means), atol=1e-4)
    assert desc["method"] == "pca"
    assert np.allclose(desc["explained_variance"], pca.explained_variance_ratio_, atol=1e-6)
    r1, r2 = desc["explained_variance"]
    assert axis_labels(desc) == (f"PC1 ({r1:.0%} of variance)", f"PC2 ({r2:.0%} of variance)")


def test_cvae_embedding_uses_the_labels(digits):
    model = make_model(3, conditional=True, num_classes=10)
    data = digits.subset(torch.arange(300))
    points, _ = latent_embedding(model, data)
    means = model.encode(data.x, data.y).mean.detach().numpy()
    assert np.allclose(points, PCA(n_components=2).fit_transform(means), atol=1e-4)
    with pytest.raises(VaekitError, match="needs labels"):
        latent_embedding(model, TensorData(data.x))


def test_1d_latent_is_a_strip_and_unknown_method_fails(digits):
    model = make_model(1)
    data = digits.subset(torch.arange(100))
    points, desc = latent_embedding(model, data)
    assert desc == {"method": "strip"}
    assert np.allclose(points[:, 0], model.encode(data.x).mean[:, 0].detach().numpy(), atol=1e-6)
    assert np.abs(points[:, 1]).max() <= 0.5
    with pytest.raises(VaekitError, match="unknown latent projection 'umap'; choose one of pca, tsne"):
        latent_embedding(model, data, method="umap")


def test_tsne_embedding_is_deterministic(digits):
    model = make_model(4)
    data = digits.subset(torch.arange(60))
    a, desc = latent_embedding(model, data, method="tsne")
    b, _ = latent_embedding(model, data, method="tsne")
    assert a.shape == (60, 2) and desc["method"] == "tsne"
    assert np.array_equal(a, b)


def test_plot_latent_writes_pngs_with_a_fixed_subsample(trained, digits, tmp_path):
    one, two = subsample(digits, 100), subsample(digits, 100)
    assert len(one) == 100 and torch.equal(one.x, two.x) and torch.equal(one.y, two.y)
    names = [f"digit {i}" for i in range(10)]
    p = plot_latent(trained, digits, tmp_path / "latent.png", class_names=names, title="digits")
    a = plot_latent(make_model(4), digits, tmp_path / "tsne.png", method="tsne", max_points=80)
    b = plot_latent(make_model(4), digits, tmp_path / "tsne2.png", method="tsne", max_points=80)
    for path in (p, a):
        mode, size, _ = png(path)
        assert size[0] > 400 and size[1] > 300
    assert np.array_equal(png(a)[2], png(b)[2])    # same subsample, same picture


# -- manifold -------------------------------------------------------------------
def test_active_dimensions_finds_the_dimension_made_active(digits):
    model = make_model(4)
    with torch.no_grad():
        model.posterior.head.weight[2] *= 50     # the mean of z[2] now moves most with x
        model.posterior.head.weight[0] *= 10
    activity = latent_activity(model, digits)
    by_hand = model.encode(digits.x).mean.detach().double().var(0).numpy()
    assert np.allclose(activity, by_hand, rtol=1e-5)
    assert active_dimensions(model, digits, k=2) == [2, 0]
    with pytest.raises(VaekitError, match="cannot pick 5 active dimensions"):
        active_dimensions(model, digits, k=5)


def test_manifold_grid_decodes_the_expected_z():
    model = make_model(4)
    images = manifold_grid(model, n=5, dims=(1, 3))
    assert images.shape == (25, 1, 8, 8)
    q = 1.6448536                                                          # norm.ppf(0.95)
    z = torch.zeros(3, 4)
    z[0, 1], z[0, 3] = -q, q      # top-left: lowest z[1], highest z[3]
    z[1, 1], z[1, 3] = q, -q      # bottom-right
    z[2, 3] = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.725))  # row 1, col 2: z[1] = 0
    expected = model.decode(z).mean.detach()
    assert torch.allclose(images[0], expected[0], atol=1e-5)
    assert torch.allclose(images[24], expected[1], atol=1e-5)
    assert torch.allclose(images[1 * 5 + 2], expected[2], atol=1e-5)

    spanned = manifold_grid(model, n=3, span=2.0)   # linspace(-2, 2): top-left is z = (-2, 2)
    assert torch.allclose(spanned[0], model.decode(torch.tensor([[-2.0, 2.0, 0, 0]])).mean.detach()[0], atol=1e-5)


def test_manifold_of_a_cvae_needs_a_label(digits, tmp_path):
    model = make_model(2, conditional=True, num_classes=10)
    with pytest.raises(VaekitError, match="pass a label"):
        manifold_grid(model, n=3)
    with pytest.raises(VaekitError, match="pass a label"):
        plot_manifold(model, tmp_path / "m.png")
    images = manifold_grid(model, n=3, label=7)
    q = 1.6448536
    expected = model.decode(torch.tensor([[-q, q]]), torch.tensor([7])).mean.detach()[0]
    assert torch.allclose(images[0], expected, atol=1e-5)
    assert png(plot_manifold(model, tmp_path / "m.png", n=5, label=7))[0] == "RGBA"


def test_manifold_rejects_tables_and_labels_for_plain_models(trained, tmp_path):
    table = make_model(2, data_shape=[5], likelihood=Part("gaussian"))
    with pytest.raises(VaekitError, match="needs image data.*use `vaekit plot RUN latent` for tables"):
        plot_manifold(table, tmp_path / "m.png")
    with pytest.raises(VaekitError, match="only applies to a conditional VAE"):
        plot_manifold(trained, tmp_path / "m.png", label=3)
    assert not (tmp_path / "m.png").exists()


def test_plot_manifold_writes_a_png(trained, digits, tmp_path):
    _, size, _ = png(plot_manifold(trained, tmp_path / "manifold.png", n=15))
    assert min(size) >= 15 * 28      # every cell gets at least ~28 px
    wide = make_model(4)
    assert png(plot_manifold(wide, tmp_path / "m4.png", data=digits.subset(torch.arange(200)), n=6))[1][0] > 0


# -- curves ---------------------------------------------------------------------
def write_rows(path, rows, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return path


ROWS = [{"epoch": e, "train_elbo": -100.0 + e, "train_recon": 90.0 - e, "train_kl": 10.0 + e * 0.1,
         "val_elbo": None if e == 1 else -101.0 + e, "val_recon": 91.0 - e, "val_kl": 10.0,
         "seconds": 1.5, "kl_weight": min(1.0, e / 2)} for e in (1, 2, 3)]


def test_read_metrics_skips_a_truncated_last_line(tmp_path):
    path = write_rows(tmp_path / "metrics.jsonl", ROWS, tail='{"epoch": 4, "train_el')
    rows = read_metrics(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[1]["val_elbo"] == -99.0


def test_read_metrics_errors(tmp_path):
    with pytest.raises(VaekitError, match="nowhere.jsonl does not exist"):
        read_metrics(tmp_path / "nowhere.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{oops\n" + json.dumps(ROWS[1]) + "\n")
    with pytest.raises(VaekitError, match="line 2 is not valid JSON"):
        read_metrics(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert read_metrics(empty) == []
    with pytest.raises(VaekitError, match="no metric rows yet"):
        plot_curves(empty, tmp_path / "curves.png")


def test_plot_curves_writes_a_png(tmp_path):
    rows = ROWS + [{"epoch": 4, "train_elbo": -95.0, "train_recon": 85.0, "train_kl": 10.0, "seconds": 1.0}]
    path = plot_curves(write_rows(tmp_path / "metrics.jsonl", rows), tmp_path / "plots" / "curves.png")
    _, size, _ = png(path)
    assert size == (12 * 120, int(3.6 * 120))


# -- samples and reconstructions ---------------------------------------------------
def test_plot_samples_is_seeded_and_leaves_the_global_rng_alone(trained, tmp_path):
    state = torch.get_rng_state()
    a = plot_samples(trained, tmp_path / "a.png", n=64)
    assert torch.equal(state, torch.get_rng_state())
    b = plot_samples(trained, tmp_path / "b.png", n=64)
    mode, size, px = png(a)
    assert mode == "L" and size == (554, 554)  # 8 x 64 px cells, 6 px apart
    assert np.array_equal(px, png(b)[2])
    torch.manual_seed(0)
    first = trained.sample(64)[0, 0].numpy()
    assert np.array_equal(px[0:64:8, 0:64:8], np.round(first * 255))


def test_plot_samples_of_a_cvae_draws_a_row_per_class(tmp_path):
    model = make_model(2, conditional=True, num_classes=10)
    _, size, _ = png(plot_samples(model, tmp_path / "s.png", n=64))
    assert size == (6 * 70 - 6, 10 * 70 - 6)     # 10 rows (classes) of 6
    _, size, _ = png(plot_samples(model, tmp_path / "s3.png", n=9, label=3))
    assert size == (3 * 70 - 6, 3 * 70 - 6)


def test_samples_and_reconstructions_need_images(trained, digits, tmp_path):
    table = make_model(2, data_shape=[5], likelihood=Part("gaussian"))
    with pytest.raises(VaekitError, match="samples plot needs image data"):
        plot_samples(table, tmp_path / "s.png")
    with pytest.raises(VaekitError, match="reconstructions plot needs image data"):
        plot_reconstructions(table, torch.zeros(4, 5), tmp_path / "r.png")
    with pytest.raises(VaekitError, match="only applies to a conditional VAE"):
        plot_samples(trained, tmp_path / "s.png", label=1)


def test_plot_reconstructions_puts_originals_above_reconstructions(trained, digits, tmp_path):
    data = digits.subset(torch.arange(16))
    mode, size, px = png(plot_reconstructions(trained, data, tmp_path / "r.png", n=16))
    block = 2 * 70 - 6 + 3                       # 2 rows of originals, a 3-px band, then 2 of reconstructions
    assert size == (8 * 70 - 6, 2 * block - 3)
    assert (px[block - 3:block] == 128).all()
    recon = trained.reconstruct(data.x)
    for i in (0, 9):
        r, c = divmod(i, 8)
        cell = px[r * 70:r * 70 + 64:8, c * 70:c * 70 + 64:8]
        assert np.array_equal(cell, np.round(data.x[i, 0].numpy() * 255))
        cell = px[block + r * 70:block + r * 70 + 64:8, c * 70:c * 70 + 64:8]
        assert np.abs(cell - np.round(recon[i, 0].numpy() * 255)).max() <= 1
    # with more data than n, a seeded subset is shown: the same one every time
    a = plot_reconstructions(trained, digits, tmp_path / "a.png", n=10)
    b = plot_reconstructions(trained, digits, tmp_path / "b.png", n=10)
    assert np.array_equal(png(a)[2], png(b)[2]) and png(a)[1] == (8 * 70 - 6, 2 * block - 3)
