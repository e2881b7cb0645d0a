"""Distances between two sets of features: Fréchet distance, and k-NN precision and recall.

Everything is computed in float64 on the CPU. The inputs are feature matrices (N, D) of real
(test) examples and of model samples, from any feature extractor (vaekit's classifier, or
Inception for FID).
"""
from __future__ import annotations

import math
from typing import Tuple

import torch


def _centred(features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and the features less it (N, D), float64."""
    f = torch.as_tensor(features).double().cpu()
    if f.dim() != 2 or f.shape[0] < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {tuple(f.shape)}")
    mu = f.mean(0)
    return mu, f - mu


def gaussian_stats(features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), float64 (as ``np.cov``)."""
    mu, centred = _centred(features)
    return mu, centred.T @ centred / (centred.shape[0] - 1)


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix, by eigh.

    Eigenvalues a little below zero (rounding, or a rank-deficient covariance from fewer
    examples than dimensions) are clipped to zero, so the result is always real.
    """
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))  (Dowson & Landau 1982; used
    as FID by Heusel et al. 2017, eq. 6). tr((S1 S2)^(1/2)) is computed as the sum of square
    roots of the eigenvalues of the symmetric PSD matrix S1^(1/2) S2 S1^(1/2), which has the
    same eigenvalues as S1 S2: no complex ``sqrtm`` and no imaginary parts to drop.
    """
    mu1, mu2 = torch.as_tensor(mu1).double(), torch.as_tensor(mu2).double()
    s1, s2 = torch.as_tensor(sigma1).double(), torch.as_tensor(sigma2).double()
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    trace_sqrt = eig.sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt
    return max(float(d2), 0.0)  # >= 0 in exact arithmetic; rounding may give -1e-12


def frechet_distance_of(real: torch.Tensor, fake: torch.Tensor) -> float:
    """:func:`frechet_distance` between Gaussians fitted to two feature sets (N, D), (M, D).

    Where N x M <= D x D (a few images' 2048 Inception features), the same distance comes from the (N, M) matrix
    P = C1 C2^T of the centred features instead of (D, D) eigenproblems: S1 S2 = C1^T (P C2) / (n1 n2) with
    n = N - 1, and AB and BA have the same nonzero eigenvalues (Horn & Johnson, Matrix Analysis, Thm. 1.3.22),
    so those of S1 S2 are those of P P^T / (n1 n2), the squared singular values of P over n1 n2:
    tr((S1 S2)^(1/2)) = sum_i sigma_i(P) / sqrt(n1 n2), and tr(S) = |C|_F^2 / n.
    """
    (mu1, c1), (mu2, c2) = _centred(real), _centred(fake)
    n1, n2 = c1.shape[0] - 1, c2.shape[0] - 1
    if c1.shape[0] * c2.shape[0] > c1.shape[1] ** 2:
        return frechet_distance(mu1, c1.T @ c1 / n1, mu2, c2.T @ c2 / n2)
    trace_sqrt = torch.linalg.svdvals(c1 @ c2.T).sum() / math.sqrt(n1 * n2)
    d2 = (mu1 - mu2).pow(2).sum() + c1.pow(2).sum() / n1 + c2.pow(2).sum() / n2 - 2 * trace_sqrt
    return max(float(d2), 0.0)  # >= 0 in exact arithmetic


def _sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (A, B) in float64, clipped at 0."""
    d = a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)
    return d.clamp_(min=0)


def knn_radii(features: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Squared distance (N,) from each point to its k-th nearest other point in the same set."""
    f = torch.as_tensor(features).double().cpu()
    if f.shape[0] <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {f.shape[0]}")
    out = []
    for start in range(0, f.shape[0], chunk):
        d = _sq_distances(f[start:start + chunk], f)
        # the k+1 smallest include the point itself (distance 0)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """For each point (P,), whether it lies in some ball (centre, radius) of the other set."""
    tol = 1e-9 * float(radii.max()) if len(radii) else 0.0  # rounding of the squared distances
    out = []
    for start in range(0, points.shape[0], chunk):
        d = _sq_distances(points[start:start + chunk], centres)
        out.append((d <= radii + tol).any(1))
    return torch.cat(out)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> Tuple[float, float]:
    """Improved precision and recall of generated samples (Kynkäänniemi et al. 2019, eq. 1-3).

    The real manifold is the union of balls around each real feature with radius its distance
    to its k-th nearest real neighbour; precision is the share of samples inside it. Recall
    swaps the roles: the share of real features inside the samples' manifold.
    """
    real = torch.as_tensor(real).double().cpu()
    fake = torch.as_tensor(fake).double().cpu()
    precision = _covered(fake, real, knn_radii(real, k)).double().mean()
    recall = _covered(real, fake, knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)
