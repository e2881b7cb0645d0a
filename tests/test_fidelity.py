"""Sample quality: Fréchet distance, k-NN precision/recall, the cached feature classifier, fd and fid."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

import vaekit
from vaekit.data import load_data
from vaekit.data.types import TensorData
from vaekit.errors import VaekitError
from vaekit.evaluate import EvalContext, compute_metrics
from vaekit.evaluate import features as feats
from vaekit.evaluate.fidelity import InceptionFID, sample_features
from vaekit.evaluate.frechet import frechet_distance, frechet_distance_of, gaussian_stats, precision_recall
from vaekit.evaluate.inception import FIDInceptionV3, load_inception


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Feature nets go to a temporary cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


# -- Fréchet distance -----------------------------------------------------------------------
def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    g = torch.Generator().manual_seed(0)
    mu1, mu2, d1, d2 = (torch.rand(6, generator=g, dtype=torch.float64) for _ in range(4))
    exact = float((mu1 - mu2).pow(2).sum() + (d1.sqrt() - d2.sqrt()).pow(2).sum())
    assert frechet_distance(mu1, torch.diag(d1), mu2, torch.diag(d2)) == pytest.approx(exact, rel=1e-10)


def test_frechet_distance_of_general_covariances_matches_scipy_sqrtm():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # pytorch-fid's reference computation
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    got = frechet_distance(*(torch.from_numpy(v) for v in (mu1, s1, mu2, s2)))
    assert got == pytest.approx(reference, rel=1e-9)


def test_frechet_distance_of_singular_covariances_stays_real():
    # N(0, diag(1, 0)) and N(0, diag(0, 1)): W2^2 = 1 + 1 - 2 tr(0) = 2
    assert frechet_distance(torch.zeros(2), torch.diag(torch.tensor([1.0, 0.0])),
                            torch.zeros(2), torch.diag(torch.tensor([0.0, 1.0]))) == pytest.approx(2.0, abs=1e-12)


def test_fd_of_a_sample_with_itself_is_zero_and_a_shift_adds_its_square():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert frechet_distance_of(x, x) < 1e-9
    shift = torch.zeros(8, dtype=torch.float64)
    for s in (0.5, 1.0, 2.0):
        shift[3] = s
        assert frechet_distance_of(x, x + shift) == pytest.approx(s * s, rel=1e-8)
    mu, sigma = gaussian_stats(x)
    assert torch.allclose(sigma, torch.from_numpy(np.cov(x.numpy(), rowvar=False)))


def test_fd_of_fewer_examples_than_dimensions_is_exact():
    """N x M <= D^2 (FID's 2048 features of a few images) goes through the (N, M) product of the centred features:
    exact where the (D, D) route's eigenvalues of a rank-4 covariance are rounding noise (7e-8 off here)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(5, 40, generator=g, dtype=torch.float64) * torch.linspace(0.1, 2, 40)
    mu, sigma = gaussian_stats(x)
    for c in (0.5, 3.0):  # N(c mu, c^2 S): |(1 - c) mu|^2 + tr(S) + c^2 tr(S) - 2 c tr(S)
        exact = float(((1 - c) * mu).pow(2).sum() + (1 - c) ** 2 * torch.trace(sigma))
        assert frechet_distance_of(x, c * x) == pytest.approx(exact, rel=1e-12)
    y = torch.randn(7, 40, generator=g, dtype=torch.float64) + 0.3
    assert frechet_distance_of(x, y) == pytest.approx(frechet_distance(*gaussian_stats(x), *gaussian_stats(y)),
                                                      rel=1e-6)
    assert frechet_distance_of(x, x) < 1e-9
    shift = torch.zeros(40, dtype=torch.float64)
    shift[7] = 1.5
    assert frechet_distance_of(x, x + shift) == pytest.approx(1.5 ** 2, rel=1e-12)


# -- precision and recall -------------------------------------------------------------------
def test_precision_recall_of_a_hand_worked_case():
    # k=1 radii: real [0, 1, 3] -> [1, 1, 2]; fake [-0.9, 2.2, 5.5] -> [3.1, 3.1, 3.3]
    real = torch.tensor([[0.0], [1.0], [3.0]])
    fake = torch.tensor([[-0.9], [2.2], [5.5]])
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 3)  # 5.5 is 2.5 from 3, outside its radius 2
    assert recall == 1.0


def test_precision_recall_identical_disjoint_and_subset_sets():
    x = torch.randn(600, 2, generator=torch.Generator().manual_seed(3))
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    assert precision_recall(x, x + 1000, k=3) == (0.0, 0.0)
    half = x[x[:, 0] > 0]  # samples that cover only half of the data
    precision, recall = precision_recall(x, half, k=3)
    assert precision == 1.0
    assert 0.4 < recall < 0.65


# -- the feature classifier -----------------------------------------------------------------
def test_feature_net_is_cached_and_deterministic(digits, cache, monkeypatch):
    monkeypatch.setattr(feats, "MAX_EPOCHS", 4)  # a quick net will do
    small = digits.train.subset(torch.arange(300))
    net, ident, path = feats.feature_net(small, "digits", 10)
    assert path.is_file() and str(path).startswith(str(cache)) and ident.startswith("vaekit-classifier:digits:")
    mtime = path.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the cached net was trained again")

    with monkeypatch.context() as m:
        m.setattr(feats, "train_classifier", no_training)
        again, ident2, path2 = feats.feature_net(small, "digits", 10)
    assert (path2, ident2) == (path, ident) and path.stat().st_mtime_ns == mtime
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))

    other = feats.feature_net(digits.train.subset(torch.arange(1, 301)), "digits", 10)[2]
    assert other != path  # another training split, another net
    retrained = feats.train_classifier(small, 10, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), retrained.state_dict().values()))
    path.write_bytes(b"not safetensors")  # a damaged cache file is trained again
    feats.feature_net(small, "digits", 10)
    assert path.stat().st_size > 1000


def test_feature_net_for_tables_and_large_images():
    g = torch.Generator().manual_seed(4)
    table = TensorData(torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g))
    assert feats.extract(feats.train_classifier(table, 3), table.x)[0].shape == (64, feats.FEATURES)
    big = feats.FeatureNet((3, 100, 70), 4)
    assert big.features(torch.rand(2, 3, 100, 70)).shape == (2, feats.FEATURES)


# -- the fd metric ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_model(tmp_path_factory):
    return vaekit.train("digits", recipe="mlp", out=tmp_path_factory.mktemp("fd") / "run", epochs=1, hidden=[64])


def test_fd_of_a_trained_model_on_digits(digits, mlp_model):
    ctx = EvalContext(train=digits.train, source="digits", info=digits.info, seed=0)
    result = compute_metrics(mlp_model, digits.test, ["fd"], ctx=ctx)
    assert result["fd_features"].startswith("vaekit-classifier:digits:") and ", accuracy 0.9" in result["fd_features"]
    assert result["fd_classifier_accuracy"] > 0.9 and result["fd_n"] == len(digits.test)
    assert 0 <= result["fd_precision"] <= 1 and 0 <= result["fd_recall"] <= 1
    # held-out real data is close in this feature space; a 1-epoch model is far from it
    net = feats.feature_net(digits.train, "digits", 10)[0]
    real_fd = frechet_distance_of(feats.extract(net, digits.test.x)[0], feats.extract(net, digits.val.x)[0])
    assert math.isfinite(result["fd"]) and result["fd"] > 3 * real_fd
    assert compute_metrics(mlp_model, digits.test, ["fd"], ctx=ctx) == result  # same seed, same numbers
    fewer = compute_metrics(mlp_model, digits.test, ["fd"], {"fd": {"n": 100, "k": 5}}, ctx=ctx)
    assert fewer["fd_n"] == 100


def test_fd_and_fid_say_why_they_cannot_run(digits, mlp_model):
    unlabelled = EvalContext(train=TensorData(digits.train.x), source="digits", info=digits.info)
    with pytest.raises(VaekitError, match="needs class labels.*fid"):
        compute_metrics(mlp_model, digits.test, ["fd"], ctx=unlabelled)
    with pytest.raises(VaekitError, match="pt_inception-2015-12-05-6726825d.pth.*--fid-weights"):
        compute_metrics(mlp_model, digits.test, ["fid"], ctx=EvalContext())
    with pytest.raises(VaekitError, match="does not exist"):
        compute_metrics(mlp_model, digits.test, ["fid"], {"fid": {"weights": "/no/such.pth"}}, ctx=EvalContext())


class LabelRecorder(torch.nn.Module):
    """A conditional 'model' that returns its labels as images, to see which labels fd samples with."""

    num_classes, data_shape, conditioned = 10, (1, 2, 2), True

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.device = torch.device("cpu")

    def sample(self, n, c=None):
        return c.float().view(n, 1, 1, 1).expand(n, 1, 2, 2) / 10


def test_a_conditional_model_samples_with_the_labels_of_the_data():
    y = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    x = sample_features(LabelRecorder(), TensorData(torch.zeros(7, 1, 2, 2), y), 0, lambda b: b, batch_size=3)
    assert torch.equal((x[:, 0, 0, 0] * 10).round().long(), y)


# -- Inception FID --------------------------------------------------------------------------
PYTORCH_FID_KEYS = ["Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_mean", "Mixed_5b.branch5x5_2.conv.weight",
                    "Mixed_6a.branch3x3dbl_3.bn.bias", "Mixed_6e.branch7x7dbl_5.conv.weight",
                    "Mixed_7a.branch7x7x3_4.bn.weight", "Mixed_7b.branch3x3_2b.conv.weight",
                    "Mixed_7c.branch_pool.bn.running_var", "fc.weight", "fc.bias"]


def test_inception_loads_a_pytorch_fid_state_dict_and_gives_2048_features(tmp_path, digits, mlp_model):
    torch.manual_seed(0)
    state = FIDInceptionV3().state_dict()
    assert set(PYTORCH_FID_KEYS) <= set(state)
    # torchvision's Inception3(aux_logits=False, num_classes=1008): 94 conv+bn blocks and fc
    assert len(state) == 94 * 6 + 2 and not any(k.startswith("AuxLogits") for k in state)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 23_850_960
    path = tmp_path / "pt_inception.pth"
    torch.save({k: v for k, v in state.items() if "num_batches_tracked" not in k}, path)  # as torch-fidelity's
    net = load_inception(path)
    assert torch.equal(net.Mixed_7c.branch_pool.bn.running_var, state["Mixed_7c.branch_pool.bn.running_var"])
    grey = torch.rand(2, 1, 8, 8)
    f = InceptionFID(weights=str(path)).features(net, grey, torch.device("cpu"))
    assert f.shape == (2, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()
    result = compute_metrics(mlp_model, digits.test, ["fid"], {"fid": {"weights": str(path), "n": 4, "k": 2}},
                             ctx=EvalContext(seed=0))
    assert result["fid_n"] == 4 and result["fid"] >= 0 and "pytorch-fid preprocessing" in result["fid_features"]

    del state["Mixed_7c.branch_pool.bn.running_var"]
    torch.save(state, path)
    with pytest.raises(VaekitError, match="does not hold the FID Inception weights: 1 missing key.*running_var"):
        load_inception(path)
    path.write_text("not a weights file")
    with pytest.raises(VaekitError, match="could not be read"):
        load_inception(path)
