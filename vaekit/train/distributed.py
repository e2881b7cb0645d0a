"""Multi-process training on torch.distributed: one process per rank, under ``torchrun``.

How the ranks train one model together, for every variant:

- **Data.** Every rank draws the same permutation of the epoch; rank r keeps positions
  r, r + world, ... of each global batch of ``--batch-size`` (``iterate_batches(shard=...)``).
- **Gradients.** After backward, each optimizer's gradients are all-reduced in buckets of
  25 MB (DDP's default ``bucket_cap_mb``), each rank's weighted by its share of the global
  batch, so the step uses the gradient of the mean over the whole global batch, as one
  process would. A rank with no examples (the last global batch smaller than the world)
  contributes weight 0, and a parameter that got no gradient on any rank keeps ``None``
  (the optimizer skips it, as it would in one process).
- **Why not the ``DistributedDataParallel`` wrapper.** DDP syncs gradients of the
  parameters its ``forward`` used. vaekit's objectives call other methods too
  (``model.discriminator(z)`` for FactorVAE and AAE, ``prior_sample``, ``log_importance_weights``)
  and step several optimizers from one forward pass, each on its own loss; the wrapper would
  miss those gradients or fail on them. Reducing after backward, per optimizer, is what DDP's
  reducer does, at the point where every variant has its gradients.
- **Buffers** (VQ-VAE's EMA codebook, the learned-sigma running MSE) are broadcast from rank 0
  after every step, as DDP does by default (``broadcast_buffers=True``): they follow rank 0's
  shard, and stay self-consistent (the codebook is its EMA sums' ratio) and identical everywhere.
- **Random draws** differ between ranks (rank 0 keeps the run's seed, others a derived one), so
  two ranks never share their noise; every rank's random state is saved for ``--resume``.
- **Writing.** Only rank 0 writes the run directory and prints; metrics are reduced first.

Ranks hold bit-identical weights after every step (all-reduced gradients are identical on
every rank); ``VAEKIT_CHECK_SYNC=1`` checks it after each step (the tests use it).
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.distributed as tdist

from ..errors import VaekitError

BUCKET_BYTES = 25 * 2 ** 20   # DDP's default bucket size
CHECK_ENV = "VAEKIT_CHECK_SYNC"
LAUNCH_HELP = ("launch with `vaekit train --nproc N ...` or `torchrun --nproc-per-node N -m vaekit train ...`, "
               "which set it")


class Dist:
    """This process's place in a multi-process run. ``Dist()`` is one process: every method is then
    a no-op, so the trainer calls them unconditionally."""

    def __init__(self, rank: int = 0, world: int = 1, device: Optional[torch.device] = None):
        self.rank, self.world = rank, world
        self.device = device or torch.device("cpu")   # where collectives' tensors live (NCCL: the rank's GPU)
        self._steps = 0

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @property
    def shard(self):
        return self.rank, self.world

    def console(self):
        """None (the default console) on rank 0; a silent console on the others."""
        if self.is_writer:
            return None
        from rich.console import Console
        return Console(stderr=True, quiet=True)

    def rank_seed(self, seed: int) -> int:
        """Rank 0 keeps ``seed`` (one process's numbers); other ranks draw other noise."""
        return seed if self.rank == 0 else (seed + self.rank * 0x9E3779B97F4A7C15) % 2 ** 64

    # -- collectives -----------------------------------------------------------------------
    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()

    def broadcast_model(self, model: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers everywhere (as DDP does when it wraps a model)."""
        if self.world > 1:
            _broadcast([*model.parameters(), *model.buffers()])

    def reduce_gradients(self, optimizers: Dict[str, torch.optim.Optimizer], examples: int) -> None:
        """Each parameter's gradient becomes sum_r n_r g_r / sum_r n_r over the ranks, where g_r is
        rank r's gradient of its per-example mean loss over its n_r = ``examples``: the gradient of the
        global batch's mean, as one process computes it."""
        if self.world == 1:
            return
        params = [p for opt in optimizers.values() for g in opt.param_groups for p in g["params"]]
        # the global example count, and which parameters have a gradient on any rank, travel at the end
        # of the first bucket (one collective less per step: each is a round trip between the processes)
        meta = torch.tensor([examples] + [float(examples > 0 and p.grad is not None) for p in params],
                            dtype=torch.float64, device=self.device)
        buckets = _buckets(params)
        fold = buckets[0][0].dtype in (torch.float32, torch.float64)   # counts stay exact (to 2^24)
        if not fold:
            tdist.all_reduce(meta)
        with torch.no_grad():
            for i, bucket in enumerate(buckets):
                parts = [(p.grad * examples if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                         for p in bucket]
                flat = torch.cat(parts + ([meta.to(bucket[0])] if i == 0 and fold else []))
                tdist.all_reduce(flat)
                if i == 0 and fold:
                    flat, meta = flat[:-len(meta)], flat[-len(meta):]
                flat.div_(meta[0].to(flat.dtype))
                for p, grad in zip(bucket, _split(flat, bucket)):
                    p.grad = grad                       # a view of the bucket, as DDP's gradient_as_bucket_view
        for p, has_grad in zip(params, (meta[1:] > 0).tolist()):
            if not has_grad:
                p.grad = None

    def after_step(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers everywhere; with VAEKIT_CHECK_SYNC=1, check every rank holds the same bits."""
        if self.world == 1:
            return
        buffers = _trained_buffers(model)
        if buffers:
            _broadcast(buffers)
        self._steps += 1
        if os.environ.get(CHECK_ENV) == "1":
            self.check_identical(model, f"step {self._steps}")

    def check_identical(self, model: torch.nn.Module, when: str) -> None:
        """Raise when any rank's weights or buffers differ from rank 0's in any bit."""
        mine = _fingerprint([*model.parameters(), *model.buffers()]).to(self.device)
        every = [torch.zeros_like(mine) for _ in range(self.world)]
        tdist.all_gather(every, mine)
        if any(not torch.equal(every[0], f) for f in every):
            raise RuntimeError(f"ranks hold different weights after {when}: {[int(f) for f in every]}")

    def sum_means(self, sums: Dict[str, float], n: float) -> Dict[str, float]:
        """Per-example means over every rank: sum_r sums_r[k] / sum_r n_r."""
        keys = sorted(sums)
        if self.world > 1:
            keys = self.from_writer(lambda: keys)   # a rank may have had no examples, so no terms
            values = torch.tensor([float(sums.get(k, 0.0)) for k in keys] + [float(n)], dtype=torch.float64,
                                  device=self.device)
            tdist.all_reduce(values)
            *totals, n = values.tolist()
            sums = dict(zip(keys, totals))
        return {k: float(sums[k]) / n for k in keys}

    def from_writer(self, compute: Callable[[], object]):
        """``compute()`` on rank 0, its result on every rank (metrics that use their own randomness)."""
        if self.world == 1:
            return compute()
        box = [compute() if self.is_writer else None]
        tdist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather_rng(self) -> Optional[List[torch.Tensor]]:
        """Every rank's torch random state, for state.pt (None for one process)."""
        return None if self.world == 1 else self.gather(torch.get_rng_state())

    def gather(self, value) -> list:
        """``value`` from every rank, in rank order (``[value]`` for one process)."""
        if self.world == 1:
            return [value]
        every = [None] * self.world
        tdist.all_gather_object(every, value)
        return every

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank: every rank gets the same answer (they must all ask)."""
        if self.world == 1:
            return bool(flag)
        value = torch.tensor([int(bool(flag))], device=self.device)
        tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
        return bool(value.item())

    def restore_rng(self, saved: Optional[Sequence[torch.Tensor]], seed: int, epoch: int) -> None:
        """This rank's saved random state; when the run was saved with another number of processes,
        ranks above 0 start a fresh stream from ``seed`` and ``epoch`` (not a bit-exact continuation)."""
        if self.rank == 0:
            return                                  # the trainer restored rank 0's (state["torch_rng"])
        if saved is not None and len(saved) == self.world:
            torch.set_rng_state(saved[self.rank])
        else:
            torch.manual_seed(self.rank_seed(seed + epoch))

    def close(self) -> None:
        """Every rank waits for the others, then tears the group down: a rank that tore down while its
        peer's last messages were in flight once died with SIGABRT in gloo's threads (a CI run)."""
        if self.world > 1 and tdist.is_initialized():
            tdist.barrier()
            tdist.destroy_process_group()


def zero_losses(optimizers: Dict[str, torch.optim.Optimizer]) -> Dict[str, torch.Tensor]:
    """Losses of value 0 for every group: what a rank with no examples steps on (its weight is 0)."""
    return {name: sum(p.sum() for g in opt.param_groups for p in g["params"]) * 0.0
            for name, opt in optimizers.items()}


# -- joining a run -----------------------------------------------------------------------------
def setup(device: str, batch_size: int, timeout_minutes: float = 30.0) -> Dist:
    """Join the process group torchrun describes in the environment (gloo on CPU, NCCL on GPUs), or
    ``Dist()`` outside torchrun."""
    world = _env_int("WORLD_SIZE", 1, minimum=1)
    if world == 1:
        return Dist()
    if batch_size < world:
        raise VaekitError(f"--batch-size {batch_size} is the global batch, split over {world} processes: give "
                          f"at least {world}")
    rank = _env_int("RANK", None, minimum=0)
    local = _env_int("LOCAL_RANK", 0, minimum=0)
    if rank >= world:
        raise VaekitError(f"environment variable RANK={rank} must be below WORLD_SIZE={world}; {LAUNCH_HELP}")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise VaekitError(f"environment variable {name} is not set but WORLD_SIZE={world} is; {LAUNCH_HELP}")
    _env_int("MASTER_PORT", None, minimum=1)
    cuda = uses_cuda(device)
    if cuda:
        if device not in ("auto", "cuda"):
            raise VaekitError(f"--device {device} with {world} processes: use --device cuda, and each process "
                              "takes the GPU of its local rank")
        if local >= torch.cuda.device_count():
            raise VaekitError(f"local rank {local} has no GPU (this machine has {torch.cuda.device_count()}); "
                              "start at most one process per GPU, or train on --device cpu")
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    if not tdist.is_initialized():
        tdist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=timeout_minutes))
    return Dist(rank, world, torch.device("cuda", local) if cuda else torch.device("cpu"))


def writer_process() -> bool:
    """False in a torchrun worker of rank above 0 (it prints and writes nothing)."""
    return os.environ.get("RANK", "0").strip() in ("0", "")


def process_label() -> str:
    """"" for one process or rank 0; " (process R)" for rank R > 0 of a torchrun run."""
    return "" if writer_process() else f" (process {os.environ['RANK'].strip()})"


def uses_cuda(device: str) -> bool:
    """Whether ``--device`` means GPUs (``auto`` where one is available)."""
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _env_int(name: str, default: Optional[int], minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise VaekitError(f"environment variable {name} is not set; {LAUNCH_HELP}")
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise VaekitError(f"environment variable {name}={raw!r} must be an integer of at least {minimum}; "
                          f"{LAUNCH_HELP}")
    return value


# -- tensors -------------------------------------------------------------------------------------
def _buckets(params: List[torch.Tensor]) -> List[List[torch.Tensor]]:
    """Tensors of one device and dtype together, up to BUCKET_BYTES each, in order."""
    groups: Dict[tuple, List[List[torch.Tensor]]] = {}
    for p in params:
        chain = groups.setdefault((p.device, p.dtype), [[]])
        if chain[-1] and sum(t.numel() for t in chain[-1]) * p.element_size() >= BUCKET_BYTES:
            chain.append([])
        chain[-1].append(p)
    return [bucket for chain in groups.values() for bucket in chain]


def _split(flat: torch.Tensor, like: List[torch.Tensor]) -> List[torch.Tensor]:
    return [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in like]), like)]


@torch.no_grad()
def _broadcast(tensors: List[torch.Tensor]) -> None:
    """Rank 0's values of ``tensors`` on every rank, one broadcast per bucket."""
    for bucket in _buckets(tensors):
        as_bytes = bucket[0].dtype == torch.bool           # gloo has no bool broadcast
        flat = torch.cat([(t.to(torch.uint8) if as_bytes else t).reshape(-1) for t in bucket])
        tdist.broadcast(flat, src=0)
        for t, value in zip(bucket, _split(flat, bucket)):
            t.copy_(value)


def _trained_buffers(model: torch.nn.Module) -> List[torch.Tensor]:
    """The buffers in the state dict: a buffer that training changes must be saved there (or resume would
    lose it), so non-persistent ones (constants such as a standard prior's zeros) need no broadcast."""
    saved = {id(t) for t in model.state_dict(keep_vars=True).values()}
    return [b for b in model.buffers() if id(b) in saved]


def _fingerprint(tensors: List[torch.Tensor]) -> torch.Tensor:
    """A checksum of the tensors' bytes, position-weighted, so any flipped bit changes it."""
    data = torch.cat([t.detach().reshape(-1).contiguous().view(torch.uint8) for t in tensors]).to(torch.int64)
    weights = torch.arange(data.numel(), dtype=torch.int64, device=data.device) % 65521 + 1
    return (data * weights).sum().reshape(1)
