"""Disentanglement metrics on representations whose answer is known (the shapes factor space).

    python benchmarks/disentanglement_check.py [--n-train 1000] [--n-test 500] [--json FILE]

Scores three representations of the shapes factors: the true factors (standardized indices,
which should score near each metric's maximum), a random rotation of them (lower), and
Gaussian noise (near the minimum). About 3 minutes on 2 cores at the defaults.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from vaekit.data.shapes import ShapesGroundTruth
from vaekit.evaluate.disentanglement import disentanglement_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    space = ShapesGroundTruth()
    sizes = np.array(space.factor_sizes)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(len(sizes), len(sizes))))[0]
    noise_rng = np.random.default_rng(2)

    def true(f):
        return (f - (sizes - 1) / 2) / np.sqrt((sizes ** 2 - 1) / 12)  # standardized factor indices

    representations = {"true factors": true, "random rotation": lambda f: true(f) @ rotation,
                       "noise": lambda f: noise_rng.normal(size=(len(f), len(sizes)))}
    rows, seconds = {}, {}
    for name, represent in representations.items():
        start = time.perf_counter()
        rows[name] = disentanglement_scores(represent, space, 0, n_train=args.n_train, n_test=args.n_test,
                                            batch_size=64, n_variance=args.n_train)
        seconds[name] = round(time.perf_counter() - start, 1)
    print(f"shapes factor space, n_train={args.n_train}, n_test={args.n_test}, seed 0")
    print("| metric | " + " | ".join(rows) + " |\n|---|" + "---|" * len(rows))
    for key in rows["true factors"]:
        print(f"| {key} | " + " | ".join(f"{rows[r][key]:.3f}" for r in rows) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "scores": rows, "seconds": seconds}, indent=2) + "\n")


if __name__ == "__main__":
    main()
