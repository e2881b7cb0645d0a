"""The disentanglement scores: how well single latent dimensions capture single known factors.

Five standard scores, computed as disentanglement_lib does (Locatello et al. 2019,
"Challenging common assumptions in the unsupervised learning of disentangled
representations"), for data whose generative factors are known and independent (``shapes``):

- :func:`beta_vae_score` (Higgins et al. 2017) and :func:`factorvae_score` (Kim & Mnih 2018)
  draw batches with one factor held fixed, so they take a ``space`` of factors
  (``factor_sizes``, ``sample_factors(n, rng)``) and ``represent(factors (n, F)) -> codes
  (n, D)``: for a model, render the factors and encode the images; in tests, any function.
- :func:`mig` (Chen et al. 2018), :func:`sap` (Kumar et al. 2018) and :func:`dci` (Eastwood &
  Williams 2018) read codes (N, D) of observations with known factor indices (N, F).

:func:`sample_codes` draws such pairs. Factors are class indices; codes are any real numbers.
The metric registered as ``disentanglement`` (:mod:`vaekit.evaluate.disentanglement`) runs
them all on a model.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np

from ..errors import require
from .base import quiet

Represent = Callable[[np.ndarray], np.ndarray]  # factor indices (n, F) -> codes (n, D)


def sample_codes(represent: Represent, space, n: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``(codes (n, D), factors (n, F))`` for ``n`` factor draws of ``space``."""
    factors = space.sample_factors(n, rng)
    return _codes(represent, factors), factors


def beta_vae_score(represent: Represent, space, rng: np.random.Generator, n_train: int = 10000,
                   n_test: int = 5000, batch_size: int = 64) -> float:
    """Accuracy of a linear classifier naming which factor two batches share (Higgins et al.
    2017, "beta-VAE: learning basic visual concepts with a constrained variational framework",
    section 3; disentanglement_lib's scikit-learn version).

    Each point: pick a factor k, draw ``batch_size`` pairs of factor vectors that agree on k,
    and take the mean absolute difference of the pairs' codes (D,). A logistic regression
    fitted on ``n_train`` points predicts k on ``n_test`` new ones. 1 when codes keep factors
    apart, 1/F (chance) for codes that ignore them.
    """
    def points(n: int) -> Tuple[np.ndarray, np.ndarray]:
        fixed = rng.integers(space.num_factors, size=n)
        first = _batches(space, n, batch_size, rng)
        second = _batches(space, n, batch_size, rng)
        rows = np.arange(n)
        second[rows, :, fixed] = first[rows, :, fixed]
        z1, z2 = (_codes(represent, f.reshape(n * batch_size, -1)).reshape(n, batch_size, -1) for f in (first, second))
        return np.abs(z1 - z2).mean(axis=1), fixed  # (n, D), (n,)

    from sklearn.linear_model import LogisticRegression

    if space.num_factors < 2:
        return 1.0  # a single factor: nothing to tell apart
    train_x, train_k = points(n_train)
    require(np.unique(train_k).size >= 2, f"the beta-VAE score drew n_train={n_train} points, all with the "
                                          "same factor held fixed; use more points")
    with quiet():
        classifier = LogisticRegression(max_iter=1000).fit(train_x, train_k)
    test_x, test_k = points(n_test)
    return float((classifier.predict(test_x) == test_k).mean())


def factorvae_score(represent: Represent, space, rng: np.random.Generator, n_train: int = 10000,
                    n_test: int = 5000, batch_size: int = 64, n_variance: int = 10000,
                    prune: float = 0.05) -> float:
    """Accuracy of a majority-vote classifier naming the fixed factor from the least varying
    code dimension (Kim & Mnih 2018, "Disentangling by factorising", section 4).

    Each code dimension is divided by its standard deviation over ``n_variance`` draws;
    dimensions with a standard deviation below ``prune`` (collapsed to the prior) are left
    out. Each point: fix one factor k over ``batch_size`` draws and vote (k, the dimension
    with the least scaled variance). Every dimension predicts the factor it got most votes
    for among ``n_train`` points; the score is how often that is right on ``n_test`` new ones.
    0 when every dimension is pruned.
    """
    require(batch_size >= 2, f"the FactorVAE score needs batch_size >= 2 to measure a variance, got {batch_size}")
    spread = _codes(represent, space.sample_factors(n_variance, rng)).var(axis=0, ddof=1)  # (D,)
    active = np.sqrt(spread) >= prune
    if not active.any():
        return 0.0

    def votes(n: int) -> np.ndarray:
        fixed = rng.integers(space.num_factors, size=n)
        factors = _batches(space, n, batch_size, rng)
        rows = np.arange(n)
        factors[rows, :, fixed] = factors[rows, 0, fixed][:, None]
        z = _codes(represent, factors.reshape(n * batch_size, -1)).reshape(n, batch_size, -1)
        least = (z.var(axis=1, ddof=1)[:, active] / spread[active]).argmin(axis=1)  # (n,)
        table = np.zeros((space.num_factors, int(active.sum())), dtype=np.int64)  # (F, active D)
        np.add.at(table, (fixed, least), 1)
        return table

    guess = votes(n_train).argmax(axis=0)  # the factor each active dimension stands for
    test = votes(n_test)
    return float(test[guess, np.arange(test.shape[1])].sum() / test.sum())


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Mutual information gap (Chen et al. 2018, "Isolating sources of disentanglement in
    VAEs", eq. 6), disentanglement_lib's discrete estimate.

    Each code dimension is cut into ``bins`` equal-width bins; I(z_i; v_k) is the discrete
    mutual information of bins and factor values. Per factor: the gap between the two
    largest I(z_i; v_k) over i, divided by the factor's entropy H(v_k); averaged over factors
    (constant factors, H = 0, are skipped). 0..1: 1 when one dimension alone carries each
    factor, 0 when none does, or two carry it equally.
    """
    from sklearn.metrics import mutual_info_score

    codes, factors = _pair(codes, factors)
    binned = [np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in codes.T]
    gaps = []
    for v in factors.T:
        entropy = mutual_info_score(v, v)
        if entropy <= 0:
            continue
        info = np.sort([mutual_info_score(v, b) for b in binned])[::-1]
        gaps.append((info[0] - (info[1] if len(info) > 1 else 0.0)) / entropy)
    return float(np.mean(gaps)) if gaps else 0.0


def sap(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray) -> float:
    """Separated attribute predictability (Kumar et al. 2018, "Variational inference of
    disentangled latent concepts from unlabeled observations", section 3), for discrete factors.

    S[i, k] is the test accuracy of a linear SVM (C = 0.01, classes balanced) predicting
    factor k from code dimension i alone; the score is the mean over factors of the gap
    between the two largest S[i, k] over i. 0 when no dimension stands out; below 1 even for
    perfect codes, since a line through one number separates few classes.
    """
    from sklearn.svm import LinearSVC

    codes, factors = _pair(codes, factors)
    codes_test, factors_test = _pair(codes_test, factors_test)
    score = np.zeros((codes.shape[1], factors.shape[1]))  # (D, F)
    for k in range(factors.shape[1]):
        values = np.unique(factors[:, k])
        for i in range(codes.shape[1]):
            if values.size < 2:
                guess = np.full(len(factors_test), values[0])
            else:
                with quiet():
                    svm = LinearSVC(C=0.01, class_weight="balanced", random_state=0).fit(codes[:, i:i + 1], factors[:, k])
                guess = svm.predict(codes_test[:, i:i + 1])
            score[i, k] = np.mean(guess == factors_test[:, k])
    if score.shape[0] < 2:
        return float(score[0].mean())
    top = np.sort(score, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def dci(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray,
        trees: int = 100, seed: int = 0) -> Dict[str, float]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A
    framework for the quantitative evaluation of disentangled representations", section 2),
    with gradient-boosted trees as in disentanglement_lib.

    One classifier per factor k (scikit-learn's GradientBoostingClassifier, ``trees`` boosting
    stages: 100 by default, as there; each stage grows one tree per class, so factors with
    many values cost the most) gives the importance R[i, k] of each code dimension i.
    Disentanglement: 1 - H_F(P[i, :]) per dimension (P: R with rows normalised; entropy in
    base F), weighted by each dimension's share of all importance. Completeness:
    1 - H_D(P~[:, k]) per factor (columns normalised, base D), weighted likewise.
    Informativeness: the classifiers' mean test accuracy (disentanglement_lib's; the paper
    uses the prediction error).
    All 0..1, higher is better.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    codes, factors = _pair(codes, factors)
    codes_test, factors_test = _pair(codes_test, factors_test)
    importance = np.zeros((codes.shape[1], factors.shape[1]))  # (D, F)
    accuracy = []
    for k in range(factors.shape[1]):
        if np.unique(factors[:, k]).size < 2:
            accuracy.append(float(np.mean(factors_test[:, k] == factors[0, k])))
            continue
        model = GradientBoostingClassifier(n_estimators=trees, random_state=seed).fit(codes, factors[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(float(np.mean(model.predict(codes_test) == factors_test[:, k])))
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return {"disentanglement": float(np.sum(_purity(importance) * weights.sum(1) / weights.sum())),
            "completeness": float(np.sum(_purity(importance.T) * weights.sum(0) / weights.sum())),
            "informativeness": float(np.mean(accuracy))}


def _purity(matrix: np.ndarray) -> np.ndarray:
    """1 - entropy of each row of ``matrix`` as a distribution, in base (number of columns)."""
    if matrix.shape[1] < 2:
        return np.ones(matrix.shape[0])
    p = matrix + 1e-11
    p = p / p.sum(axis=1, keepdims=True)
    return 1.0 + (p * np.log(p)).sum(axis=1) / np.log(matrix.shape[1])


def _batches(space, n: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` batches of ``batch_size`` factor draws (n, B, F)."""
    return space.sample_factors(n * batch_size, rng).reshape(n, batch_size, space.num_factors)


def _codes(represent: Represent, factors: np.ndarray) -> np.ndarray:
    codes = np.asarray(represent(factors), dtype=np.float64)
    require(codes.ndim == 2 and len(codes) == len(factors),
            f"a representation must map {len(factors)} factor vectors to codes (n, D), got shape {codes.shape}")
    require(bool(np.isfinite(codes).all()), "the codes are not all finite (NaN or inf): the model has diverged; "
                                            "retrain it, e.g. with a lower --lr")
    return codes


def _pair(codes, factors) -> Tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors)
    require(codes.ndim == 2 and factors.ndim == 2 and len(codes) == len(factors),
            f"codes (N, D) and factors (N, F) must pair up, got shapes {codes.shape} and {factors.shape}")
    return codes, np.rint(factors).astype(np.int64)
