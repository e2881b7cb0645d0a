"""Quantizers: what turns a continuous code vector z_e into a discrete code and its vector z_q.

Each takes M vectors ze (M, D) and gives a :class:`Quantized`: the code index per stage (M, S), the
vector the decoder reads (with the gradient path the method prescribes) and per-vector loss terms.

- :class:`EMACodebook`: K codes learned by moving averages (van den Oord et al. 2017, app. A.1).
- :class:`LearnedCodebook`: K codes learned by gradient on the codebook loss (van den Oord et al. 2017,
  eq. 3; Esser et al. 2021, eq. 4, VQGAN).
- :class:`FiniteScalar`: per-channel bounded rounding to a fixed grid (Mentzer et al. 2023, FSQ).
- :class:`ResidualVQ`: S EMA codebooks, each quantizing what the ones before left (Zeghidour et al. 2021,
  SoundStream, alg. 1).

All state is in buffers or parameters, so checkpoints and exact resume carry it; the random draws of
initialisation and restarts come from torch's generator, which the trainer saves in state.pt.
"""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn



class Quantized(NamedTuple):
    index: torch.Tensor               # (M, S) code index per stage
    z: torch.Tensor                   # (M, D) what the decoder reads; gradients reach ze through it
    losses: Dict[str, torch.Tensor]   # per-vector terms (M,): "commitment", "codebook"


def codebook_stats(index: torch.Tensor, codes: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(usage, perplexity) of code indices (any shape) into a codebook of ``codes``: usage is the share of
    codes used at least once; perplexity is exp of the entropy of the average code distribution (van den
    Oord et al. 2017 report it; K when every code is used equally, 1 when one code is)."""
    p = torch.bincount(index.reshape(-1), minlength=codes).double()
    p = p / p.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return (p > 0).double().mean(), torch.exp(entropy)


def straight_through(ze: torch.Tensor, zq: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The commitment term ||ze - sg[zq]||^2 per vector (van den Oord et al. 2017, eq. 3)."""
    return {"commitment": (ze - zq.detach()).pow(2).sum(1)}


class Codebook(nn.Module):
    """K code vectors of dimension D, the nearest chosen; with ``restart_after`` N > 0, a code unused for
    N training steps is moved to a random encoder output of the batch (the random restarts of Dhariwal et
    al. 2020, Jukebox, sec. 2.2; SoundStream's replacement of codes unused for several batches, Zeghidour
    et al. 2021, sec. 3.2). ``idle`` counts each code's steps since its last use."""

    stages = 1

    def __init__(self, codes: int, dim: int, restart_after: int = 0):
        super().__init__()
        self.codes, self.dim, self.restart_after = int(codes), int(dim), int(restart_after)
        if self.restart_after > 0:
            self.register_buffer("idle", torch.zeros(self.codes, dtype=torch.long))

    @property
    def bits(self) -> float:
        return self.stages * math.log2(self.codes)

    def vectors(self) -> torch.Tensor:
        raise NotImplementedError

    def nearest(self, ze: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each vector: ze (M, D) -> (M,)."""
        e = self.vectors()
        d = ze.pow(2).sum(1, keepdim=True) - 2 * ze @ e.t() + e.pow(2).sum(1)   # (M, K) squared distances
        return d.argmin(1)

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        """Code vectors of indices (M, S) -> (M, D)."""
        return self.vectors()[index[:, 0]]

    def tables(self) -> torch.Tensor:
        """(S, K, D): lookup(index) = sum_s tables[s, index[:, s]] (what an export writes down)."""
        return self.vectors()[None]

    @torch.no_grad()
    def restart_idle(self, ze: torch.Tensor, index: torch.Tensor) -> None:
        """Count steps unused; move codes idle for ``restart_after`` steps to random rows of ze (M, D)."""
        if self.restart_after <= 0:
            return
        used = torch.bincount(index.reshape(-1), minlength=self.codes) > 0
        self.idle.add_(1).masked_fill_(used, 0)
        dead = self.idle >= self.restart_after
        if bool(dead.any()):
            pick = ze[torch.randint(0, ze.shape[0], (int(dead.sum()),), device=ze.device)]
            self.reset(dead, pick)
            self.idle.masked_fill_(dead, 0)

    def reset(self, dead: torch.Tensor, vectors: torch.Tensor) -> None:
        raise NotImplementedError


class EMACodebook(Codebook):
    """K codes of dimension D, updated as moving averages of the vectors assigned to them
    (van den Oord et al. 2017, appendix A.1, with Laplace smoothing of the counts). The codebook
    starts at randomly chosen encoder outputs of the first training batch, and a code whose
    moving-average count falls below ``restart`` times the mean count is moved to a random encoder
    output of the batch (the random restarts of Dhariwal et al. 2020, Jukebox), so no code stays dead."""

    def __init__(self, codes: int, dim: int, decay: float = 0.99, eps: float = 1e-5, restart: float = 0.03,
                 restart_after: int = 0):
        super().__init__(codes, dim, restart_after)
        self.decay, self.eps, self.restart = decay, eps, restart
        self.register_buffer("embedding", torch.randn(codes, dim))
        self.register_buffer("ema_count", torch.ones(codes))
        self.register_buffer("ema_weight", self.embedding.clone())
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def vectors(self) -> torch.Tensor:
        return self.embedding

    def forward(self, ze: torch.Tensor) -> Quantized:
        index = self.nearest(ze)
        zq = self.embedding[index]                    # the codes before this step's update
        if self.training and self.update(ze.detach(), index):
            index = self.nearest(ze)                  # the first batch initialised the codebook
            zq = self.embedding[index]
        return Quantized(index[:, None], ze + (zq - ze).detach(), straight_through(ze, zq))

    @torch.no_grad()
    def update(self, ze: torch.Tensor, index: torch.Tensor) -> bool:
        """One EMA step from the vectors ze (M, D) assigned to codes ``index`` (M,); True if this
        call initialised the codebook instead (the assignments are then stale)."""
        k = self.embedding.shape[0]
        if not bool(self.started):
            pick = torch.randint(0, ze.shape[0], (k,), device=ze.device)
            self.embedding.copy_(ze[pick])
            self.ema_weight.copy_(ze[pick])
            self.started.fill_(True)
            return True
        onehot = F.one_hot(index, k).to(ze.dtype)                       # (M, K)
        # N_i <- g N_i + (1 - g) n_i;  m_i <- g m_i + (1 - g) sum_j z_e,j  (app. A.1, eqs. 6-7)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_weight.mul_(self.decay).add_(onehot.t() @ ze, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + self.eps) / (n + k * self.eps) * n    # Laplace smoothing
        self.embedding.copy_(self.ema_weight / count[:, None])         # e_i = m_i / N_i (eq. 8)
        dead = self.ema_count < self.restart * ze.shape[0] / k                # (K,)
        if self.restart > 0 and bool(dead.any()):
            pick = ze[torch.randint(0, ze.shape[0], (k,), device=ze.device)]
            self.reset(dead, pick[dead])
        self.restart_idle(ze, index)
        return False

    def reset(self, dead: torch.Tensor, vectors: torch.Tensor) -> None:
        self.embedding[dead] = vectors
        self.ema_weight[dead] = vectors
        self.ema_count[dead] = 1.0


class LearnedCodebook(Codebook):
    """K codes learned by gradient descent: the codebook loss ||sg[ze] - zq||^2 moves each chosen code to
    its encoder outputs, the commitment term ||ze - sg[zq]||^2 keeps the encoder near its codes (van den
    Oord et al. 2017, eq. 3; Esser et al. 2021, eq. 4). Initialised uniformly in [-1/K, 1/K] as taming's
    VectorQuantizer."""

    def __init__(self, codes: int, dim: int, restart_after: int = 0):
        super().__init__(codes, dim, restart_after)
        self.embedding = nn.Parameter(torch.empty(codes, dim).uniform_(-1.0 / codes, 1.0 / codes))

    def vectors(self) -> torch.Tensor:
        return self.embedding

    def forward(self, ze: torch.Tensor) -> Quantized:
        index = self.nearest(ze.detach())
        zq = self.embedding[index]
        losses = {**straight_through(ze, zq), "codebook": (ze.detach() - zq).pow(2).sum(1)}
        if self.training:
            self.restart_idle(ze.detach(), index)
        return Quantized(index[:, None], ze + (zq - ze).detach(), losses)

    @torch.no_grad()
    def reset(self, dead: torch.Tensor, vectors: torch.Tensor) -> None:
        self.embedding[dead] = vectors


class FiniteScalar(nn.Module):
    """Finite scalar quantization (Mentzer, Minnen, Agustsson & Tschannen 2023, sec. 3): channel i is bounded
    to L_i values by f(z) = tanh(z + s) half - o, half = (L - 1)(1 + eps) / 2, o = 1/2 for even L, else 0,
    s = atanh(o / half) so that f(0) = 0 (the paper's appendix A.1 writes 1 - eps, for which atanh(o / half)
    has no value at L = 2; 1 + eps keeps the rounded range at L values all the same), rounded with a
    straight-through gradient, and divided by floor(L / 2); the implicit codebook is the grid of prod(L_i)
    points, its index the mixed-radix number of the channel levels. No codebook loss."""

    stages = 1

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        self.levels = [int(v) for v in levels]
        self.dim, self.codes = len(self.levels), math.prod(self.levels)
        L = torch.tensor(self.levels, dtype=torch.float64)
        half = (L - 1) * (1 + eps) / 2
        offset = torch.where(L % 2 == 0, 0.5, 0.0)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1]), 0)
        # constants, not state: rebuilt from the levels, so not saved
        self.register_buffer("bound", half.float(), persistent=False)
        self.register_buffer("offset", offset.float(), persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half).float(), persistent=False)
        self.register_buffer("width", torch.floor(L / 2).float(), persistent=False)
        self.register_buffer("basis", basis, persistent=False)

    @property
    def bits(self) -> float:
        return sum(math.log2(v) for v in self.levels)

    def grid(self, ze: torch.Tensor) -> torch.Tensor:
        """The integer level of each channel, -floor(L/2) .. ceil(L/2) - 1, straight-through."""
        bounded = torch.tanh(ze + self.shift) * self.bound - self.offset
        return bounded + (torch.round(bounded) - bounded).detach()

    def forward(self, ze: torch.Tensor) -> Quantized:
        q = self.grid(ze)
        index = ((q.detach() + self.width).long() * self.basis).sum(1)
        return Quantized(index[:, None], q / self.width, {})

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        digits = (index[:, :1] // self.basis) % self.basis.new_tensor(self.levels)
        return (digits.to(self.width.dtype) - self.width) / self.width

    def tables(self) -> torch.Tensor:
        """(1, K, D): the implicit codebook written out, every grid point in index order."""
        return self.lookup(torch.arange(self.codes, device=self.basis.device)[:, None])[None]


class ResidualVQ(nn.Module):
    """Residual vector quantization (Zeghidour et al. 2021, SoundStream, alg. 1): stage i quantizes the
    residual r_i = ze - sum_{j<i} q_j with its own EMA codebook (decay, Laplace smoothing; van den Oord et
    al. 2017, app. A.1), and z_q = sum_i q_i. One index per stage; the straight-through gradient and the
    commitment term use the sum."""

    def __init__(self, codes: int, dim: int, stages: int = 8, decay: float = 0.99, eps: float = 1e-5,
                 restart_after: int = 0):
        super().__init__()
        self.stages, self.codes, self.dim = int(stages), int(codes), int(dim)
        self.books = nn.ModuleList([EMACodebook(codes, dim, decay, eps, restart=0.0, restart_after=restart_after)
                                    for _ in range(self.stages)])

    @property
    def bits(self) -> float:
        return self.stages * math.log2(self.codes)

    def residuals(self, ze: torch.Tensor) -> List[torch.Tensor]:
        """The residual left after each stage, (S,) tensors (M, D), without updating anything."""
        r, out = ze, []
        for book in self.books:
            r = r - book.embedding[book.nearest(r)]
            out.append(r)
        return out

    def forward(self, ze: torch.Tensor) -> Quantized:
        r, zq, index = ze.detach(), torch.zeros_like(ze), []
        for book in self.books:
            i = book.nearest(r)
            q = book.embedding[i]
            if self.training and book.update(r, i):
                i = book.nearest(r)  # this stage was initialised from the residuals of this batch
                q = book.embedding[i]
            index.append(i)
            zq, r = zq + q, r - q
        return Quantized(torch.stack(index, 1), ze + (zq - ze).detach(), straight_through(ze, zq))

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        return sum(book.embedding[index[:, s]] for s, book in enumerate(self.books))

    def tables(self) -> torch.Tensor:
        """(S, K, D): each stage's codebook; a code is the sum of one vector per stage."""
        return torch.stack([book.embedding for book in self.books])
