"""vaekit's LPIPS against the PyPI ``lpips`` package, with the same random backbone and the package's lin weights.

torchvision (which ``lpips`` imports) cannot be installed beside vaekit's torch, so the package runs in a
venv of its own, in a subprocess:

    python3 -m venv /tmp/lpips-venv
    /tmp/lpips-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 lpips==0.1.4
    .venv/bin/python benchmarks/lpips_parity.py --lpips-python /tmp/lpips-venv/bin/python \\
        --save benchmarks/results/lpips_parity.json --fixture tests/data/lpips_parity.json

For each network (vgg, alex) and image size, a backbone drawn from a seed
(:func:`vaekit.nn.lpips_weights.random_backbone`) is saved to a file that both load: vaekit by its torchvision
keys, the package (``lpips.LPIPS(net=..., pnet_rand=True)``) into its slices. Random image pairs in [0, 1]
go through both (the package with ``normalize=True``); the largest absolute difference must be <= 1e-5.
``--fixture`` writes the package's outputs on the suite's small images, which tests/test_lpips.py checks
without torchvision.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vaekit.nn.lpips_weights import load_lpips, random_backbone  # noqa: E402

TOLERANCE = 1e-5
BACKBONE_SEED = 0
CASES = {"vgg": (32, 64), "alex": (32, 64)}          # the benchmark's image sizes
FIXTURE_CASES = {"vgg": (16, 24), "alex": (32, 40)}  # the suite's (AlexNet needs 31 px and up)
PAIRS = 4

REFERENCE = r"""
import sys, torch, lpips
job = torch.load(sys.argv[1], weights_only=True)
out = {}
for case, item in job.items():
    net, backbone, x, y = item["net"], item["backbone"], item["x"], item["y"]
    model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    own = model.net.state_dict()                    # slice{k}.{N}.weight -> features.{N}.weight
    model.net.load_state_dict({k: backbone["features." + k.split(".", 1)[1]] for k in own})
    with torch.no_grad():
        out[case] = model(x, y, normalize=True).flatten().double()
torch.save(out, sys.argv[2])
from importlib.metadata import version
print(f"lpips {version('lpips')}, torch {torch.__version__}, torchvision {version('torchvision')}")
"""


def images(seed: int, size: int, n: int = PAIRS):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g)


def run(lpips_python: str, cases: dict, image_seed: int) -> dict:
    """{case: {"net", "size", "vaekit": [...], "lpips": [...], "max_abs_diff"}}."""
    results, job = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for net, sizes in cases.items():
            backbone = random_backbone(net, BACKBONE_SEED)
            path = Path(tmp) / f"{net}-random.pth"
            torch.save(backbone, path)
            model = load_lpips(net, str(path))                   # the lin weights of the installed lpips package
            for size in sizes:
                x, y = images(image_seed + size, size)
                with torch.no_grad():
                    mine = model(x, y).double()
                case = f"{net}-{size}"
                job[case] = {"net": net, "backbone": backbone, "x": x, "y": y}
                results[case] = {"net": net, "size": size, "vaekit": mine.tolist()}
        torch.save(job, Path(tmp) / "job.pt")
        done = subprocess.run([lpips_python, "-c", REFERENCE, str(Path(tmp) / "job.pt"), str(Path(tmp) / "out.pt")],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the lpips package failed:\n{done.stderr[-2000:]}")
        reference = torch.load(Path(tmp) / "out.pt", weights_only=True)
        versions = done.stdout.strip().splitlines()[-1]
    for case, r in results.items():
        r["lpips"] = reference[case].tolist()
        r["max_abs_diff"] = float((torch.tensor(r["vaekit"]) - reference[case]).abs().max())
    return {"reference": versions, "cases": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lpips-python", default="/tmp/lpips-venv/bin/python")
    p.add_argument("--save", help="JSON file for the measured result")
    p.add_argument("--fixture", help="JSON file for the suite's expected outputs")
    a = p.parse_args()
    bench = run(a.lpips_python, CASES, image_seed=1)
    worst = max(c["max_abs_diff"] for c in bench["cases"].values())
    for case, c in bench["cases"].items():
        print(f"{case:10s} max |vaekit - lpips| = {c['max_abs_diff']:.2e}  (values {min(c['lpips']):.4f}.."
              f"{max(c['lpips']):.4f})")
    print(f"worst {worst:.2e}, tolerance {TOLERANCE:.0e}: {'ok' if worst <= TOLERANCE else 'FAIL'}")
    report = {"torch_vaekit": torch.__version__, "reference": bench["reference"], "backbone_seed": BACKBONE_SEED,
              "pairs_per_case": PAIRS, "tolerance": TOLERANCE, "max_abs_diff": worst,
              "cases": {k: {"net": v["net"], "size": v["size"], "max_abs_diff": v["max_abs_diff"]}
                        for k, v in bench["cases"].items()}}
    if a.save:
        Path(a.save).write_text(json.dumps(report, indent=2) + "\n")
    if a.fixture:
        fixture = run(a.lpips_python, FIXTURE_CASES, image_seed=100)
        Path(a.fixture).write_text(json.dumps({
            "backbone_seed": BACKBONE_SEED, "image_seed": 100, "pairs": PAIRS, "reference": fixture["reference"],
            "expected": {k: {"net": v["net"], "size": v["size"], "lpips": v["lpips"]}
                         for k, v in fixture["cases"].items()}}, indent=2) + "\n")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
