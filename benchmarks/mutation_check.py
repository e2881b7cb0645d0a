"""Break each audited formula on purpose and check that a test fails (mutation testing).

    python benchmarks/mutation_check.py [NAME-FILTER ...]

Each mutation is applied to a fresh clone of the committed tree in a temporary directory (the
working tree is never touched), then the test files in TESTS run on it. Prints which tests caught each mutation; exits 1 if any mutation went uncaught. About ten
minutes on 2 cores.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_numbers.py", "tests/test_likelihood.py", "tests/test_train_loop.py",
         "tests/test_latent_quality.py"]

# (name, file, [(old, new), ...]): each a wrong version of one formula or rule
MUTATIONS = [
    ("rsample replaced by sample", "vaekit/models/vae.py", [("z = q.rsample()  #", "z = q.sample()  #")]),
    ("reported ELBO from the free-bits penalty", "vaekit/objectives/elbo.py",
     [('terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(),',
       'terms = {"elbo": -(t.recon.mean() + penalty), "recon": t.recon.mean(), "kl": penalty,')]),
    ("free bits clamped per example", "vaekit/objectives/elbo.py",
     [("per_dim.mean(0).clamp(min=self.free_bits).sum()", "per_dim.clamp(min=self.free_bits).mean(0).sum()")]),
    ("train metrics as a mean of batch means", "vaekit/train/loop_state.py",
     [("n += b\n", "n += 1\n"), ("v.detach() * b", "v.detach()")]),
    ("CVAE labels scrambled inside importance sampling", "vaekit/models/vae.py",
     [(".expand(x.shape[0]).repeat(n)", ".expand(x.shape[0]).repeat_interleave(n)")]),
    ("CVAE labels scrambled (repeated-batch path)", "vaekit/contract/bounds.py",
     [("cr = None if c is None else c.repeat(n)", "cr = None if c is None else c.repeat_interleave(n)"),
      ('if hasattr(model, "forward_many")', 'if False')]),
    ("standard error without sqrt(n)", "vaekit/evaluate/likelihood.py",
     [("float(v.double().std() / math.sqrt(len(v)))", "float(v.double().std())")]),
    ("sigma floor moved", "vaekit/distributions/likelihoods.py",
     [("min_sigma: float = 1e-3", "min_sigma: float = 1e-2")]),
    ("log-variance clamp moved", "vaekit/distributions/posteriors.py",
     [("logvar.clamp(-30.0, 20.0)", "logvar.clamp(-20.0, 20.0)")]),
    ("mse from a posterior sample", "vaekit/evaluate/recon.py",
     [("x_hat = model.reconstruct(x, y if model.num_classes else None)",
       "x_hat = model.reconstruct(x, y if model.num_classes else None, mean=False)")]),
    ("Monte Carlo KL fallback never run", "vaekit/distributions/kl.py",
     [("return q.log_prob(z) - p.log_prob(z)", "return torch.zeros(z.shape[0], device=z.device)")]),
    ("dequantized bits with log L", "vaekit/evaluate/units.py", [("d * math.log(levels - 1)", "d * math.log(levels)")]),
    ("no dequantization noise", "vaekit/evaluate/units.py", [("return x + (u - 0.5) / (levels - 1)", "return x")]),
    ("Jacobian sign", "vaekit/evaluate/units.py",
     [("return -float(torch.tensor(info.std", "return float(torch.tensor(info.std")]),
    ("active-unit threshold", "vaekit/evaluate/decomposition.py", [("ACTIVE = 0.01", "ACTIVE = 0.001")]),
    ("optimal sigma not debiased", "vaekit/distributions/likelihoods.py",
     [("debiased = self.mse_ema / (1 - MOMENTUM ** self.steps.clamp(min=1))", "debiased = self.mse_ema")]),
    ("optimal sigma from the running mean, not the batch", "vaekit/distributions/likelihoods.py",
     [("scale = (mse + self.owner.min_sigma ** 2).sqrt()", "scale = self.owner.variance().sqrt()")]),
    ("importance-sampled bound without log k", "vaekit/contract/bounds.py",
     [("return torch.logsumexp(log_w, dim=0) - torch.log(", "return torch.logsumexp(log_w, dim=0) - 0 * torch.log(")]),
    ("binary uint8 divided by 255", "vaekit/data/arrays.py",
     [("if lo >= 0 and hi <= 1:  # binary images", "if False:  # binary images")]),
    # four that the suite missed in a later audit, each with its own test since
    ("beta-TC's stratified weight 1/M for the own example", "vaekit/objectives/tc.py",
     [("w[i, i] = 1.0 / n", "w[i, i] = 1.0 / m")]),
    ("gradient clipping of the main group only", "vaekit/train/optimizers.py",
     [("        if grad_clip:  # the norm", '        if grad_clip and name == "main":  # the norm')]),
    ("linear probe fitted on the evaluated split", "vaekit/evaluate/latent.py",
     [("probe.fit(train_z, train_y)", "probe.fit(z, y)")]),
    ("validation averaged per batch", "vaekit/train/validation.py",
     [("sums.get(k, 0.0) + float(v) * x.shape[0]", "sums.get(k, 0.0) + float(v)"),
      ("            n += x.shape[0]", "            n += 1")]),
]


def main() -> int:
    wanted = sys.argv[1:]
    uncaught = []
    with tempfile.TemporaryDirectory(prefix="vaekit-mutants-") as tmp:
        for name, path, edits in MUTATIONS:
            if wanted and not any(w in name for w in wanted):
                continue
            tree = Path(tmp) / "tree"
            shutil.rmtree(tree, ignore_errors=True)
            subprocess.run(["git", "clone", "-q", str(ROOT), str(tree)], check=True)
            source = (tree / path).read_text()
            for old, new in edits:
                if old not in source:
                    print(f"{name}: the code to break was not found in {path}; update this script")
                    return 2
                source = source.replace(old, new)
            (tree / path).write_text(source)
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
                                 cwd=tree, capture_output=True, text=True, env=env)
            caught = sorted({f.split("::")[1] for f in re.findall(r"FAILED (\S+)", run.stdout)})
            print(f"{name}: " + (f"caught by {', '.join(caught)}" if caught else "NOT CAUGHT"), flush=True)
            if not caught:
                uncaught.append(name)
    return 1 if uncaught else 0


if __name__ == "__main__":
    sys.exit(main())
