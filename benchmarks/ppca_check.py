"""The importance-sampled log p(x) against the exact value on probabilistic PCA.

A linear-Gaussian model x = W z + b + sigma eps with a general, non-orthogonal W has
log p(x) = log N(x; b, W W^T + sigma^2 I). Its encoder gives the exact posterior mean and the
diagonal of the exact posterior covariance, so the bound has a real gap to close. Prints the
exact value, the ELBO and the estimate at k = 1, 10, 100, 1000 with standard errors.

    python benchmarks/ppca_check.py [--n 2000] [--json benchmarks/results/ppca.json]
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_numbers import ppca  # noqa: E402  (the same model the test checks)

from vaekit.data.types import TensorData  # noqa: E402
from vaekit.evaluate import evaluate_elbo, evaluate_log_likelihood  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="examples drawn from the model")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    model, exact = ppca()
    torch.manual_seed(0)
    x = exact.sample((args.n,))
    values = exact.log_prob(x).double()
    rows = {"exact": {"log_likelihood": float(values.mean()), "se": float(values.std() / args.n ** 0.5)}}
    torch.manual_seed(1)
    rows["elbo"] = {"log_likelihood": evaluate_elbo(model, TensorData(x))["elbo"]}
    for k in (1, 10, 100, 1000):
        torch.manual_seed(2)
        r = evaluate_log_likelihood(model, TensorData(x), k=k)
        rows[f"k={k}"] = {"log_likelihood": r["log_likelihood"], "se": r["log_likelihood_se"],
                          "minus_exact": r["log_likelihood"] - rows["exact"]["log_likelihood"]}
    print(f"PPCA, 4-D data, 2-D latent, {args.n} examples drawn from the model (nats per example)")
    print("| estimate | log p(x) | standard error | minus exact |\n|---|---|---|---|")
    for name, r in rows.items():
        se = f"{r['se']:.4f}" if "se" in r else "-"
        gap = f"{r['log_likelihood'] - rows['exact']['log_likelihood']:+.4f}"
        print(f"| {name} | {r['log_likelihood']:.4f} | {se} | {gap} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
