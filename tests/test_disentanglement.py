"""The ``shapes`` dataset and the disentanglement scores (beta-VAE, FactorVAE, MIG, SAP, DCI).

The scores are checked on representations with known answers: the true factors
(standardised) score at the top, a random rotation of them lower, pure noise near the
bottom (chance level for the classifier-based scores); plus exact cases for MIG, the
FactorVAE score's pruning and SAP. One run trains a tiny VAE on shapes and scores it.
"""
import numpy as np
import pytest

import vaekit
from vaekit.contract.output import Capabilities
from vaekit.data import DATASET_NAMES, load_data
from vaekit.data.builtin import canonical_name
from vaekit.data.shapes import FACTOR_NAMES, FACTOR_SIZES, FactorSpace, ShapesGroundTruth, load_shapes
from vaekit.errors import VaekitError
from vaekit.evaluate import EvalContext, compute_metrics, meanings
from vaekit.evaluate.disentanglement import disentanglement_scores
from vaekit.evaluate.disentanglement_scores import dci, factorvae_score, mig, sample_codes, sap
from vaekit.registry import METRICS

SPACE = FactorSpace((3, 4, 5, 6))  # small, so the boosted trees of DCI are quick
SIZES = np.array(SPACE.factor_sizes)
ROTATION = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]
SMALL = dict(n_train=400, n_test=200, batch_size=32, n_variance=1000, dci_trees=10)


def standardised(factors):
    """The true factors, each scaled to mean 0 and variance 1 (uniform indices)."""
    return (factors - (SIZES - 1) / 2) / np.sqrt((SIZES ** 2 - 1) / 12)


# -- the dataset ----------------------------------------------------------------------------
def test_shapes_are_deterministic_with_factors_in_range():
    a, b, other = load_shapes(300, seed=5), load_shapes(300, seed=5), load_shapes(300, seed=6)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.factors, b.factors)
    assert not np.array_equal(a.factors, other.factors)
    assert a.x.shape == (300, 1, 64, 64) and a.x.dtype == np.float32 and set(np.unique(a.x)) == {0.0, 1.0}
    assert a.factors.shape == (300, 5) and a.factors.dtype == np.float32
    assert (a.factors >= 0).all() and (a.factors < np.array(FACTOR_SIZES)).all()
    assert len(np.unique(a.factors[:, 0])) == 3 and len(np.unique(a.factors[:, 1])) == 6
    assert np.array_equal(a.y, a.factors[:, 0]) and a.class_names == ["square", "ellipse", "heart"]
    assert a.extra["factor_names"] == list(FACTOR_NAMES) == ["shape", "scale", "rotation", "x", "y"]


def test_shapes_names_sizes_and_splits():
    assert "shapes" in DATASET_NAMES
    assert canonical_name("Shapes") == canonical_name("shapes-10000") == "shapes"
    assert canonical_name("SHAPES_2000-seed3") == "shapes-2000-seed3" and canonical_name("shapes-x") is None
    splits = load_data("shapes-500-seed2")
    assert splits.info.name == "shapes-500-seed2" and splits.info.num_classes == 3
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 500
    for split in (splits.train, splits.val, splits.test):  # the factors travel with their images
        assert split.factors.shape == (len(split), 5)
        assert np.array_equal(split.y.numpy(), split.factors[:, 0].numpy())
        assert np.array_equal(ShapesGroundTruth().render(split.factors.numpy()[:20]), split.x[:20].numpy())
    with pytest.raises(VaekitError, match="between 1 and"):
        load_data("shapes-0")


def test_every_factor_changes_the_image():
    truth = ShapesGroundTruth()
    base = np.array([1, 4, 3, 10, 12])
    image = truth.render(base[None])[0, 0]
    for k in range(5):
        step = base.copy()
        step[k] += 1
        assert not np.array_equal(truth.render(step[None])[0, 0], image), FACTOR_NAMES[k]
    moved = base + np.array([0, 0, 0, 2, -2])  # two steps are exactly 3 pixels
    assert np.array_equal(truth.render(moved[None])[0, 0], np.roll(image, (-3, 3), axis=(0, 1)))
    areas = truth.render(np.array([[s, k, 0, 15, 15] for s in range(3) for k in range(6)])).sum(axis=(1, 2, 3))
    assert (np.diff(areas.reshape(3, 6), axis=1) > 0).all()  # every shape grows with its scale


def test_sprites_stay_inside_the_frame_everywhere():
    truth = ShapesGroundTruth()
    corners = [(0, 0), (30, 30), (0, 30), (30, 0)]  # even positions: the same sub-pixel phase
    factors = np.array([[s, 5, r, x, y] for s in range(3) for r in range(40) for x, y in corners])
    areas = truth.render(factors).sum(axis=(1, 2, 3)).reshape(-1, len(corners))
    assert (areas > 0).all() and (areas == areas[:, :1]).all()


# -- the scores on representations with known answers -----------------------------------------
@pytest.fixture(scope="module")
def scores():
    noise = np.random.default_rng(2)
    represent = {"true": standardised, "rotated": lambda f: standardised(f) @ ROTATION,
                 "noise": lambda f: noise.normal(size=(len(f), 4))}
    return {name: disentanglement_scores(r, SPACE, seed=0, **SMALL) for name, r in represent.items()}


CHANCE = 0.25  # 1 / 4 factors; for DCI's informativeness, the mean of 1 / values is 0.24
EXPECTED = {  # key: (the true factors at least, rotated between, noise between)
    "beta_vae_score": (0.99, (0.80, 0.97), (CHANCE - 0.1, CHANCE + 0.1)),
    "factorvae_score": (0.99, (0.75, 0.97), (CHANCE - 0.1, CHANCE + 0.1)),
    "mig": (0.95, (0.2, 0.4), (0.0, 0.03)),
    "sap": (0.25, (0.08, 0.22), (0.0, 0.06)),  # 1-D linear classifiers: ~1/3 even for the true factors
    "dci_disentanglement": (0.99, (0.35, 0.6), (0.0, 0.08)),
    "dci_completeness": (0.99, (0.35, 0.6), (0.0, 0.08)),
    "dci_informativeness": (0.99, (0.8, 0.97), (CHANCE - 0.1, CHANCE + 0.1)),
}


@pytest.mark.parametrize("key", EXPECTED)
def test_scores_rank_true_rotated_and_noise(scores, key):
    top, (r_lo, r_hi), (n_lo, n_hi) = EXPECTED[key]
    true, rotated, noise = (scores[r][key] for r in ("true", "rotated", "noise"))
    assert true >= top and r_lo <= rotated <= r_hi and n_lo <= noise <= n_hi, (true, rotated, noise)
    assert true <= 1.0 + 1e-9


def test_mig_is_zero_for_a_factor_two_dimensions_share():
    codes, factors = sample_codes(standardised, SPACE, 2000, np.random.default_rng(0))
    assert mig(codes, factors) > 0.99
    shared = np.concatenate([codes, codes[:, :1]], axis=1)  # factor 0 in two dimensions: its gap is 0
    assert abs(mig(shared, factors) - 0.75) < 0.01


SCALES = np.array([0.1, 1, 10, 100])


def padded(factors, noise=None):
    """The true factors on very different scales (each with a little noise, if given a
    generator), and two collapsed dimensions."""
    codes = standardised(factors) + (0 if noise is None else 0.05 * noise.normal(size=factors.shape))
    return np.concatenate([codes * SCALES, np.zeros((len(factors), 2))], axis=1)


def test_factorvae_score_scales_dimensions_and_prunes_collapsed_ones():
    rng = np.random.default_rng(0)
    assert factorvae_score(lambda f: padded(f, rng), SPACE, rng, 100, 100, 16, 500) == 1.0
    assert factorvae_score(lambda f: np.zeros((len(f), 3)), SPACE, rng, 100, 100, 16, 500) == 0.0


def test_dci_gives_unused_dimensions_no_weight():
    rng = np.random.default_rng(0)
    train, test = (sample_codes(padded, SPACE, n, rng) for n in (300, 100))
    assert dci(*train, *test, trees=10) == pytest.approx(
        {"disentanglement": 1.0, "completeness": 1.0, "informativeness": 1.0}, abs=1e-6)


def test_sap_of_binary_factors_is_one_half():
    space = FactorSpace((2, 2, 2))
    rng = np.random.default_rng(0)
    train, test = (sample_codes(lambda f: f - 0.5, space, n, rng) for n in (1000, 1000))
    assert abs(sap(*train, *test) - 0.5) < 0.05  # own dimension: accuracy 1; any other: 1/2


# -- the registered metric on a model --------------------------------------------------------
def test_disentanglement_metric_on_a_trained_model(tmp_path):
    model = vaekit.train("shapes-1000", recipe="mlp", hidden=[32], latent_dim=4, out=tmp_path / "run", epochs=1,
                         progress=False)
    splits = load_data("shapes-1000")
    ctx = EvalContext(train=splits.train, source="shapes-1000", info=splits.info, seed=0)
    options = {"disentanglement": dict(n_train=100, n_test=50, batch_size=8, n_variance=200, dci_trees=2)}
    values = compute_metrics(model, splits.test, ["disentanglement"], options, ctx)
    assert set(values) == set(meanings(["disentanglement"])) and len(values) == 7
    assert all(np.isfinite(v) and 0 <= v <= 1 for v in values.values()), values
    assert compute_metrics(model, splits.test, ["disentanglement"], options, ctx) == values  # seeded

    digits = load_data("digits")
    elsewhere = EvalContext(source="digits", info=digits.info)
    with pytest.raises(VaekitError, match="known generative factors"):
        compute_metrics(model, splits.test, ["disentanglement"], options, elsewhere)
    assert "shapes" in METRICS.build("disentanglement", {}).unavailable(model, splits.test, elsewhere)
    model.capabilities = Capabilities(encode=False)
    with pytest.raises(VaekitError, match="does not apply"):
        compute_metrics(model, splits.test, ["disentanglement"], options, ctx)
    with pytest.raises(VaekitError, match="scores"):
        compute_metrics(model, splits.test, ["disentanglement"], {"disentanglement": {"scores": ["nope"]}}, ctx)
