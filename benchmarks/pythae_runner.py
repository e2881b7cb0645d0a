"""pythae's side of benchmarks/vs_pythae.py: train pythae's VAE on the same arrays, time each epoch.

Runs in a separate environment that has pythae (``pip install pythae==0.1.2`` with torch 2.13.0)
and needs nothing from vaekit. ``--net`` chooses the networks:
- ``mlp``: the one vaekit's ``mlp`` network builds, 784-H ReLU encoder with a linear head to
  (mu, log-variance), H ReLU decoder to 784 outputs (a sigmoid: pythae's BCE wants probabilities);
- ``conv``: pythae's own MNIST benchmark pair, ``Encoder_Conv_VAE_MNIST`` + ``Decoder_Conv_AE_MNIST``;
- ``default``: pythae's default networks for a VAE (``Encoder_VAE_MLP`` + ``Decoder_AE_MLP``,
  784-512-D), its default latent size (10) unless ``--latent``, and its trainer's defaults
  (Adam, learning rate 1e-4, batch 64) unless given.
The loss is always BCE (pythae's default is MSE, a Gaussian of unit variance, whose NLL is not
comparable with a Bernoulli one).

    python benchmarks/pythae_runner.py --npz data.npz --epochs 3 --batch-size 128 --hidden 512 --latent 16
    python benchmarks/pythae_runner.py --npz data.npz --net conv --epochs 2 --batch-size 100 --train-n 2000 --no-eval
    python benchmarks/pythae_runner.py --npz data.npz --net default --seconds 120 --evaluate --nll-n 1000

``--seconds``: no epoch starts once the budget is spent, counted from building pythae's training
pipeline (the rule vaekit_runner.py applies too). Prints one JSON line: seconds of each epoch
(pythae's training pass plus its validation pass, timed by its own epoch callbacks), the last
validation loss, the parameter count and the training set's size.
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


def networks(shape: tuple, hidden: int, latent: int):
    dim = int(np.prod(shape))
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

    return Encoder(), Decoder(shape)


class OutOfTime(Exception):
    """Raised by the epoch timer once the time budget is spent."""


def build_model(args, shape):
    from pythae.models import VAE, VAEConfig

    latent = {} if args.latent is None else {"latent_dim": args.latent}
    config = VAEConfig(input_dim=shape, reconstruction_loss="bce", **latent)
    if args.net == "mlp":
        encoder, decoder = networks(shape, args.hidden, config.latent_dim)
    elif args.net == "conv":
        from pythae.models.nn.benchmarks.mnist import Decoder_Conv_AE_MNIST, Encoder_Conv_VAE_MNIST
        encoder, decoder = Encoder_Conv_VAE_MNIST(config), Decoder_Conv_AE_MNIST(config)
    else:
        encoder = decoder = None  # pythae's defaults
    return VAE(config, encoder=encoder, decoder=decoder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", required=True, help="x_train, x_val, x_test: float32 (N, 1, 28, 28) in [0, 1]")
    parser.add_argument("--net", choices=["mlp", "conv", "default"], default="mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=None, help="train epochs until this budget is spent")
    parser.add_argument("--batch-size", type=int, default=None, help="default: pythae's (64)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--latent", type=int, default=None, help="default: pythae's (10)")
    parser.add_argument("--lr", type=float, default=None, help="default: pythae's (1e-4)")
    parser.add_argument("--train-n", type=int, default=None, help="train on the first N training images")
    parser.add_argument("--no-eval", action="store_true", help="no validation pass (keep the last model)")
    parser.add_argument("--evaluate", action="store_true", help="also time encoding, the test loss and get_nll")
    parser.add_argument("--nll-n", type=int, default=200)
    parser.add_argument("--nll-k", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    arrays = np.load(args.npz)
    x_train, x_val = arrays["x_train"][:args.train_n], arrays["x_val"]
    model = build_model(args, tuple(x_train.shape[1:]))
    start = time.perf_counter()

    class Timer(TrainingCallback):
        def __init__(self):
            self.seconds, self.begin = [], None

        def on_epoch_begin(self, training_config, **kwargs):
            self.begin = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.begin)
            if args.seconds is not None and time.perf_counter() - start >= args.seconds:
                raise OutOfTime

    timer = Timer()
    given = {"learning_rate": args.lr, "per_device_train_batch_size": args.batch_size,
             "per_device_eval_batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as out:
        training = BaseTrainerConfig(output_dir=out, num_epochs=10**6 if args.seconds else args.epochs, no_cuda=True,
                                     steps_saving=None, keep_best_on_train=args.no_eval,
                                     **{k: v for k, v in given.items() if v is not None})
        pipeline = TrainingPipeline(model=model, training_config=training)
        try:
            pipeline(train_data=torch.from_numpy(x_train), eval_data=None if args.no_eval else torch.from_numpy(x_val),
                     callbacks=[timer])
        except OutOfTime:
            pass
        train_seconds = time.perf_counter() - start
        model = (pipeline.trainer.model if args.no_eval else pipeline.trainer._best_model).eval()
    result = {"library": "pythae", "epoch_seconds": timer.seconds, "epochs": len(timer.seconds),
              "train_seconds": train_seconds, "n_train": len(x_train), "latent": model.latent_dim,
              "batch_size": training.per_device_train_batch_size, "lr": training.learning_rate,
              "parameters": sum(p.numel() for p in model.parameters()),
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    if not args.no_eval:
        with torch.no_grad():
            val = torch.from_numpy(x_val)
            result["val_loss"] = sum(model({"data": val[i:i + 1000]}).loss.item() * len(val[i:i + 1000])
                                     for i in range(0, len(val), 1000)) / len(val)
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
