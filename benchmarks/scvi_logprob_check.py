"""vaekit's ZINB and NB log-probabilities against scvi-tools' on random counts: the same numbers, constants included.

    SCVI_PYTHON benchmarks/scvi_logprob_check.py      (scvi-tools' environment; vaekit is read from this checkout)

Prints the largest difference per value and per cell (64 cells x 50 genes, 30% zeros); used to rule out the
log-probability as a cause of ELBO differences in benchmarks/vs_scvi.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vaekit.distributions.counts import nb_log_prob, zinb_log_prob  # noqa: E402


def main() -> None:
    from scvi.distributions import NegativeBinomial, ZeroInflatedNegativeBinomial

    torch.manual_seed(0)
    x = torch.poisson(torch.rand(64, 50) * 20)
    x[torch.rand_like(x) < 0.3] = 0
    mu, theta, logits = torch.rand(64, 50) * 30 + 0.1, torch.rand(50) * 5 + 0.1, torch.randn(64, 50)
    ours = zinb_log_prob(x, mu, theta, logits)
    theirs = ZeroInflatedNegativeBinomial(mu=mu, theta=theta.expand_as(mu), zi_logits=logits).log_prob(x)
    print(f"zinb: max |diff| per value {(ours - theirs).abs().max():.2e}, per cell "
          f"{(ours.sum(1) - theirs.sum(1)).abs().max():.2e} nats")
    ours, theirs = nb_log_prob(x, mu, theta), NegativeBinomial(mu=mu, theta=theta.expand_as(mu)).log_prob(x)
    print(f"nb: max |diff| per value {(ours - theirs).abs().max():.2e} nats")


if __name__ == "__main__":
    main()
