"""PIWAE: the encoder trained on MIWAE(M, K), the decoder on IWAE(M * K), each with its own optimizer.

The objective needs the encoder and decoder in separate parameter groups, which the composed
``vae`` does not declare; the ``piwae`` structure here is that VAE with two groups (like
``factorvae``, which keeps its structure and objective in one file).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn

from ..contract.bounds import importance_sampled_log_likelihood
from ..errors import VaekitError
from ..objectives.base import LossOutput
from ..objectives.miwae import MIWAE, grouped_log_weights, miwae_bound
from ..registry import MODELS, OBJECTIVES
from .vae import VAE


@MODELS.register("piwae")
class PIWAEModel(VAE):
    """The composed VAE with parameter groups ``"main"`` (encoder and posterior head: the inference
    network) and ``"decoder"`` (everything else: decoder, likelihood, prior), stepped in that order."""

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        inference = {id(p) for m in (self.encoder, self.posterior) for p in m.parameters()}
        return {"main": [p for p in self.parameters() if id(p) in inference],
                "decoder": [p for p in self.parameters() if id(p) not in inference]}


@OBJECTIVES.register("piwae")
class PIWAE(MIWAE):
    """Encoder loss -MIWAE(M, K); decoder loss -IWAE(M * K), both from the same M * K samples.

    Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh 2018, "Tighter Variational Bounds are Not
    Necessarily Better", section 4 (PIWAE): the tighter IWAE bound helps the generative network
    while its encoder gradient's signal-to-noise ratio falls as K grows, so the inference network
    gets the MIWAE bound. The trainer gives each group the gradient of its own loss only.
    Terms: ``iwae`` (the M*K-sample bound, monitored), ``miwae`` and ``elbo``.
    """

    monitor = ("iwae", "max")
    name = "piwae"

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        if "decoder" not in model.parameter_groups():
            raise VaekitError("the piwae objective trains the encoder and the decoder on different bounds, so it "
                              "needs a model with a decoder parameter group: use --model piwae")
        true_w, train_w = grouped_log_weights(model, x, c, self.m, self.k, kl_weight)   # (M, K, B)
        b = x.shape[0]
        iwae = importance_sampled_log_likelihood(train_w.reshape(-1, b))                # (B,)
        terms = {"iwae": importance_sampled_log_likelihood(true_w.reshape(-1, b)).mean(),
                 "miwae": miwae_bound(true_w).mean(), "elbo": true_w.mean()}
        return LossOutput({"main": -miwae_bound(train_w).mean(), "decoder": -iwae.mean()}, terms)
