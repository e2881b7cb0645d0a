"""Latent-quality metrics (vaekit.evaluate.latent): k-NN and linear-probe accuracy, silhouette.

Known answers on arrays first (hand-computed cases, separated classes, random labels), then
the registered metrics through a small model trained on digits, then their refusals.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import vaekit
from vaekit.data.types import TensorData
from vaekit.errors import VaekitError
from vaekit.evaluate import EvalContext, compute_metrics, meanings
from vaekit.evaluate.latent import (MEANINGS, knn_accuracy, latent_quality, majority_class_accuracy, probe_accuracy,
                                    silhouette)


def blobs(n_per_class=100, classes=3, dim=4, spread=0.5, seed=0):
    """Gaussian blobs around class centres 10 apart along the axes, with their labels."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    centres = 10.0 * np.eye(classes, dim)
    return centres[y] + spread * rng.standard_normal((len(y), dim)), y


# -- known answers on arrays -----------------------------------------------------------------
def test_silhouette_matches_a_hand_computed_case():
    # class 0 at 0 and 1, class 1 at 4 and 5 (1-D): a = 1 for every point; b = 4.5 for the outer
    # points and 3.5 for the inner ones, so s = (3.5/4.5 + 2.5/3.5) / 2 = (7/9 + 5/7) / 2
    z, y = np.array([[0.0], [1.0], [4.0], [5.0]]), np.array([0, 0, 1, 1])
    assert silhouette(z, y) == pytest.approx((7 / 9 + 5 / 7) / 2, abs=1e-12)


def test_knn_uses_k_neighbours_and_majority_uses_the_training_labels():
    # the nearest training point of 0.9 is 1.0 (class 1); its 3 nearest are 1.0, 0.0, 0.1 (2 of class 0)
    train_z, train_y = np.array([[0.0], [0.1], [1.0], [5.0]]), np.array([0, 0, 1, 1])
    z, y = np.array([[0.9]]), np.array([0])
    assert knn_accuracy(train_z, train_y, z, y, k=1) == 0.0
    assert knn_accuracy(train_z, train_y, z, y, k=3) == 1.0
    # the most common training label is 0: right on 1 of the 4 scored examples
    assert majority_class_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1, 1])) == 0.25


def test_separated_classes_score_perfectly():
    train_z, train_y = blobs(seed=0)
    z, y = blobs(seed=1)
    result = latent_quality(train_z, train_y, z, y)
    assert result["knn_accuracy"] == 1.0 and result["probe_accuracy"] == 1.0
    assert result["silhouette"] > 0.85                        # tight blobs far apart
    assert result["majority_class_accuracy"] == pytest.approx(1 / 3)


def test_random_labels_score_at_chance():
    rng = np.random.default_rng(0)
    train_z, z = rng.standard_normal((2000, 4)), rng.standard_normal((2000, 4))
    train_y, y = rng.integers(0, 4, 2000), rng.integers(0, 4, 2000)
    result = latent_quality(train_z, train_y, z, y)
    # chance is 1/4; the binomial standard error on 2000 examples is ~0.01
    assert abs(result["knn_accuracy"] - 0.25) < 0.04
    assert abs(result["probe_accuracy"] - 0.25) < 0.04
    assert abs(result["silhouette"]) < 0.03


def test_probe_is_linear_where_knn_is_local():
    # a class per side of a line: the linear probe finds it; two concentric circles: k-NN
    # separates them, no line does
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (600, 2))
    y = (z[:, 0] > 0).astype(int)
    assert probe_accuracy(z[:400], y[:400], z[400:], y[400:]) > 0.97
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 400)), np.sin(np.linspace(0, 2 * np.pi, 400))], 1)
    z2 = np.concatenate([0.3 * ring, 1.0 * ring]) + 0.02 * rng.standard_normal((800, 2))
    y2 = np.repeat([0, 1], 400)                                # two concentric circles
    order = rng.permutation(800)
    z2, y2 = z2[order], y2[order]
    assert knn_accuracy(z2[:600], y2[:600], z2[600:], y2[600:]) > 0.97
    assert probe_accuracy(z2[:600], y2[:600], z2[600:], y2[600:]) < 0.75   # not linearly separable


def test_probe_standardizes_the_latent_means():
    # the class lives in a dimension a million times narrower than a noise dimension: unscaled,
    # the L2 penalty keeps its weight near 0 and the probe is at chance; standardized, it is easy
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    z = np.stack([1e-6 * (2 * y - 1 + 0.3 * rng.standard_normal(400)), rng.standard_normal(400)], 1)
    assert probe_accuracy(z[:300], y[:300], z[300:], y[300:]) > 0.97


def test_silhouette_subsamples_with_the_seed():
    z, y = blobs(n_per_class=400, spread=4.0)
    full = silhouette(z, y)
    a, b = silhouette(z, y, max_points=300, seed=1), silhouette(z, y, max_points=300, seed=1)
    assert a == b and a != silhouette(z, y, max_points=300, seed=2)
    assert abs(a - full) < 0.05
    assert silhouette(z, y, max_points=5000, seed=7) == full   # all points: the seed does not matter


def test_no_warning_reaches_the_user_and_bad_inputs_are_clear():
    train_z, train_y = blobs(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe_accuracy(train_z, train_y, train_z, train_y, max_iter=1)   # stops before converging
        knn_accuracy(train_z, train_y, train_z, train_y)
        silhouette(train_z, train_y)
    assert caught == []
    with pytest.raises(VaekitError, match="not all finite"):
        knn_accuracy(np.full((3, 2), np.nan), [0, 1, 0], np.zeros((1, 2)), [0])
    with pytest.raises(VaekitError, match="k <= 3"):
        knn_accuracy(np.zeros((3, 2)), [0, 1, 0], np.zeros((1, 2)), [0], k=5)
    with pytest.raises(VaekitError, match="at least 2 classes"):
        silhouette(np.zeros((4, 2)), [1, 1, 1, 1])
    with pytest.raises(VaekitError, match="at least 2 classes"):
        probe_accuracy(np.zeros((4, 2)), [1, 1, 1, 1], np.zeros((1, 2)), [1])


# -- the registered metrics on a trained model ------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An 8-D MLP VAE trained 10 epochs on digits (about a second), and its data splits."""
    out = tmp_path_factory.mktemp("latent") / "run"
    vaekit.train("digits", recipe="mlp", out=out, epochs=10, latent_dim=8, progress=False)
    cfg = vaekit.open_run(out).config
    splits = vaekit.load_data("digits", seed=cfg.train.seed, val_fraction=cfg.data.val_fraction)
    return vaekit.load(out), splits


def test_latent_metrics_of_a_trained_model_are_well_above_chance(trained):
    model, splits = trained
    ctx = EvalContext(train=splits.train, seed=0)
    group = compute_metrics(model, splits.test, ["latent"], ctx=ctx)
    assert set(group) == set(MEANINGS) == set(meanings(["latent"]))
    chance = group["majority_class_accuracy"]
    assert chance < 0.15                                      # 10 balanced digit classes
    assert group["knn_accuracy"] > 0.7 and group["probe_accuracy"] > 0.7, group
    assert group["silhouette"] > 0.05, group
    single = compute_metrics(model, splits.test, ["knn", "probe", "silhouette"], ctx=ctx)
    assert single == group                                    # the group is the three metrics, encoded once
    # the metric is the array formula on the posterior means
    from vaekit.models.helpers import posterior_moments
    z_train, z = posterior_moments(model, splits.train)[0], posterior_moments(model, splits.test)[0]
    assert group["knn_accuracy"] == knn_accuracy(z_train, splits.train.y, z, splits.test.y)


def test_raw_pixels_are_a_strong_reference(trained):
    _, splits = trained
    flat = lambda d: d.x.flatten(1).numpy()  # noqa: E731
    result = latent_quality(flat(splits.train), splits.train.y, flat(splits.test), splits.test.y)
    assert result["knn_accuracy"] > 0.95 and result["probe_accuracy"] > 0.9


def test_latent_metrics_say_why_they_cannot_run(trained):
    model, splits = trained
    unlabelled = TensorData(splits.test.x)
    ctx = EvalContext(train=splits.train)
    for name in ("knn", "probe", "silhouette", "latent"):
        with pytest.raises(VaekitError, match="needs class labels, and the evaluated data has none"):
            compute_metrics(model, unlabelled, [name], ctx=ctx)
    for name in ("knn", "probe", "latent"):
        with pytest.raises(VaekitError, match=r"fits a classifier on the training split, and none was given"):
            compute_metrics(model, splits.test, [name])
        with pytest.raises(VaekitError, match="the training split has none"):
            compute_metrics(model, splits.test, [name], ctx=EvalContext(train=TensorData(splits.train.x)))
    # the silhouette fits nothing: it runs without the training split
    assert -1 <= compute_metrics(model, splits.test, ["silhouette"])["silhouette"] <= 1
    with pytest.raises(VaekitError, match="at least k=5000 training examples"):
        compute_metrics(model, splits.test, ["knn"], {"knn": {"k": 5000}}, ctx=ctx)
    one_class = splits.test.subset(torch.nonzero(splits.test.y == 3).flatten())
    with pytest.raises(VaekitError, match="the silhouette needs at least 2 classes"):
        compute_metrics(model, one_class, ["silhouette"])


def test_the_probe_is_fitted_on_the_training_split_not_the_evaluated_one():
    """The training split's labels follow the sign of z, the evaluated split's the opposite sign: a probe
    fitted on the training split is wrong on every evaluated example (a train-on-test probe would be right)."""
    rng = np.random.default_rng(0)
    train_z, z = rng.uniform(-1, 1, (300, 2)), rng.uniform(-1, 1, (200, 2))
    train_z[:, 0] += np.sign(train_z[:, 0]) * 0.2   # a margin around the boundary
    z[:, 0] += np.sign(z[:, 0]) * 0.2
    train_y, y = (train_z[:, 0] > 0).astype(int), (z[:, 0] < 0).astype(int)
    assert probe_accuracy(train_z, train_y, z, y) == 0.0
    assert latent_quality(train_z, train_y, z, y)["probe_accuracy"] == 0.0
    assert latent_quality(train_z, train_y, z, y)["knn_accuracy"] == 0.0
