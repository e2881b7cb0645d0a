"""pythae's side of benchmarks/vs_pythae.py: train pythae's VAE on the same arrays, time each epoch.

Runs in a separate environment that has pythae (``pip install pythae==0.1.2`` with torch 2.13.0)
and needs nothing from vaekit. The network is the one vaekit's ``mlp`` network builds:
784-H ReLU encoder with a linear head to (mu, log-variance), H ReLU decoder to 784 logits;
pythae's BCE loss wants probabilities, so the decoder ends in a sigmoid.

    python benchmarks/pythae_runner.py --npz data.npz --epochs 3 --batch-size 128 --hidden 512 --latent 16

Prints one JSON line: seconds of each epoch (pythae's training pass plus its validation pass,
timed by its own epoch callbacks), the last validation loss and the training set's size.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings

import numpy as np
import torch
from torch import nn


def networks(dim: int, hidden: int, latent: int):
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(dim, hidden), nn.ReLU())
            self.head = nn.Linear(hidden, 2 * latent)

        def forward(self, x):
            mu, log_var = self.head(self.body(x)).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self, shape):
            super().__init__()
            self.shape = shape
            self.net = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(-1, *self.shape))

    return Encoder, Decoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", required=True, help="x_train, x_val: float32 (N, 1, 28, 28) in [0, 1]")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--evaluate", action="store_true", help="also time encoding, the test loss and get_nll")
    parser.add_argument("--nll-n", type=int, default=200)
    parser.add_argument("--nll-k", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from pythae.models import VAE, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    arrays = np.load(args.npz)
    x_train, x_val = arrays["x_train"], arrays["x_val"]
    shape = tuple(x_train.shape[1:])
    encoder_cls, decoder_cls = networks(int(np.prod(shape)), args.hidden, args.latent)
    config = VAEConfig(input_dim=shape, latent_dim=args.latent, reconstruction_loss="bce")
    model = VAE(config, encoder=encoder_cls(), decoder=decoder_cls(shape))

    class Timer(TrainingCallback):
        def __init__(self):
            self.seconds, self.start = [], None

        def on_epoch_begin(self, training_config, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        training = BaseTrainerConfig(output_dir=out, num_epochs=args.epochs, learning_rate=args.lr,
                                     per_device_train_batch_size=args.batch_size,
                                     per_device_eval_batch_size=args.batch_size, no_cuda=True,
                                     steps_saving=None)
        pipeline = TrainingPipeline(model=model, training_config=training)
        pipeline(train_data=torch.from_numpy(x_train), eval_data=torch.from_numpy(x_val), callbacks=[timer])
        model = pipeline.trainer._best_model.eval()
        with torch.no_grad():
            val = torch.from_numpy(x_val)
            losses = [model({"data": val[i:i + 1000]}).loss.item() * len(val[i:i + 1000])
                      for i in range(0, len(val), 1000)]
    result = {"library": "pythae", "epoch_seconds": timer.seconds, "n_train": len(x_train),
              "val_loss": sum(losses) / len(val), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.evaluate:
        result.update(evaluation_seconds(model, torch.from_numpy(arrays["x_test"]), args.nll_n, args.nll_k))
    print(json.dumps(result))


def evaluation_seconds(model, x_test: torch.Tensor, nll_n: int, nll_k: int) -> dict:
    """Seconds to encode the test set (the encoder's means), its loss (the negative ELBO) and pythae's
    importance-sampled get_nll on the first ``nll_n`` images with ``nll_k`` samples (its batch 100)."""
    timed = {}
    with torch.no_grad():
        start = time.perf_counter()
        for i in range(0, len(x_test), 1000):
            model.encoder(x_test[i:i + 1000]).embedding
        timed["encode_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        loss = sum(model({"data": x_test[i:i + 1000]}).loss.item() * len(x_test[i:i + 1000])
                   for i in range(0, len(x_test), 1000)) / len(x_test)
        timed["elbo_seconds"], timed["test_elbo"] = time.perf_counter() - start, -loss
        start = time.perf_counter()
        # pythae 0.1.2's get_nll returns the mean log p(x) (a negative number) despite its name
        timed["nll"] = -float(model.get_nll(x_test[:nll_n], n_samples=nll_k, batch_size=100))
        timed["nll_seconds"] = time.perf_counter() - start
    return {**timed, "n_test": len(x_test), "nll_n": nll_n, "nll_k": nll_k}


if __name__ == "__main__":
    main()
