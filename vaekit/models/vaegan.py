"""VAE-GAN: a VAE whose reconstruction is measured in a GAN discriminator's feature space.

Larsen, Sonderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a learned
similarity metric" (ICML). The discriminator's l-th layer Dis_l(x) carries a Gaussian
p(Dis_l(x) | z) = N(Dis_l(x) | Dis_l(x~), I), x~ = Dec(z) (eq. 8); its negative log is the
reconstruction term L_llike^Dis_l (eq. 9). Three parameter groups, three losses (Algorithm 1):
encoder (``main``: encoder, posterior, prior) KL + L_llike; ``decoder`` gamma * L_llike - L_GAN;
``discriminator`` L_GAN over real, reconstructed and prior-sampled images (eq. 10). The
discriminator is not trained on L_llike (sec. 2.3). The reported ``elbo`` is the true pixel
bound of ``elbo_terms``, although training never reads the pixel likelihood.

Not implemented: the authors' code (and pythae) skip the decoder's or the discriminator's
update when the discriminator's cross-entropy leaves equilibrium 0.68 +- margin 0.4; vaekit's
trainer steps every group every step.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.distributions import Independent, Normal

from ..contract.bounds import elbo_terms
from ..errors import VaekitError
from ..objectives.base import LossOutput, Objective
from ..registry import MODELS, OBJECTIVES
from .aae import discriminator_loss, own_groups
from .vae import VAE


class FeatureDiscriminator(nn.Module):
    """Dis: data (N, *shape) -> (logit (N, 1), features of layer ``layer`` (N, F)).

    Images (C, H, W) of any size: 3x3 convolutions, the first of stride 1, the others of
    stride 2 (``widths`` channels, leaky ReLU), then global average pooling and a linear logit. Other data: dense layers of
    ``widths`` units on the flattened example. Layer l (1-based) is the l-th conv or dense layer.
    """

    def __init__(self, data_shape: Sequence[int], widths: Sequence[int]):
        super().__init__()
        image = len(data_shape) == 3
        size = data_shape[0] if image else int(torch.tensor(data_shape).prod())
        self.layers = nn.ModuleList()
        for i, w in enumerate(widths):
            layer = nn.Conv2d(size, w, 3, stride=1 if i == 0 else 2, padding=1) if image else nn.Linear(size, w)
            self.layers.append(nn.Sequential(layer, nn.LeakyReLU(0.2)))
            size = w
        self.pool = nn.AdaptiveAvgPool2d(1) if image else nn.Identity()
        self.head = nn.Linear(size, 1)
        self.image = image

    def forward(self, x: torch.Tensor, layer: int) -> Tuple[torch.Tensor, torch.Tensor]:
        h = x if self.image else x.flatten(1)
        features = None
        for i, block in enumerate(self.layers, start=1):
            h = block(h)                                                 # (N, C_i, H_i, W_i) or (N, C_i)
            if i == layer:
                features = h.flatten(1)                                  # (N, F)
        return self.head(self.pool(h).flatten(1)), features


@MODELS.register("vaegan")
class VAEGAN(VAE):
    """The composed VAE plus an image discriminator; groups ``main``, ``decoder``, ``discriminator``.

    ``disc_widths``: the discriminator's channels (images) or units (other data) per layer;
    ``recon_layer``: the layer l whose features give the reconstruction term (1 = first). The
    paper used a deeper layer (pythae's MNIST example: 3, its default: the last); on 8x8 digits,
    20 epochs with layer 1 reached a pixel ELBO near a plain VAE's (-26.2 vs -25.2), layers 2-3
    far worse, so vaekit's default is 1 and the recipe keeps 3 for larger images.
    """

    objectives = ("vaegan",)

    def __init__(self, *args, disc_widths: Sequence[int] = (32, 64, 128), recon_layer: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        widths = [int(w) for w in disc_widths]
        if not widths or min(widths) < 1:
            raise VaekitError(f"the vaegan discriminator needs at least one layer of width >= 1, got disc_widths="
                              f"{list(disc_widths)}")
        if not 1 <= int(recon_layer) <= len(widths):
            raise VaekitError(f"the vaegan recon_layer must be one of the discriminator's layers 1..{len(widths)}, "
                              f"got {recon_layer}; set model.structure.args.recon_layer or add disc_widths")
        self.recon_layer = int(recon_layer)
        self.discriminator = FeatureDiscriminator(self.data_shape, widths)

    def parameter_groups(self) -> Dict[str, List[nn.Parameter]]:
        return own_groups(self, decoder=["decoder", "likelihood"], discriminator=["discriminator"])


def feature_nll(real: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """L_llike^Dis_l = -log N(Dis_l(x) | Dis_l(x~), I) (Larsen et al. 2016, eq. 8-9), per example.
    Features (B, F) each -> (B,)."""
    return -Independent(Normal(recon, torch.ones_like(recon)), 1).log_prob(real)


@OBJECTIVES.register("vaegan")
class VAEGANObjective(Objective):
    """Larsen et al. 2016, Algorithm 1, one forward pass for all three losses:

    - ``main`` (encoder): kl_weight * KL(q(z|x) || p(z)) + L_llike^Dis_l (eq. 9 and the prior term);
    - ``decoder``: gamma * L_llike^Dis_l - L_GAN;
    - ``discriminator``: L_GAN = -log Dis(x) - log(1 - Dis(x~)) - log(1 - Dis(Dec(z_p))), z_p ~ p(z)
      (eq. 10 as a cross-entropy, batch means), which the decoder thus maximises.

    gamma weighs reconstruction against fooling the discriminator (sec. 2.3). Terms: the true
    ``elbo``, ``recon`` and ``kl`` (pixel likelihood), ``recon_dis`` (L_llike) and ``gan`` (L_GAN).
    """

    def __init__(self, gamma: float = 1.0):
        if gamma < 0:
            raise VaekitError(f"the vaegan objective's gamma must be 0 or more, got {gamma}")
        self.gamma = float(gamma)

    def __call__(self, model, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                 kl_weight: float = 1.0) -> LossOutput:
        if not isinstance(model, VAEGAN):
            raise VaekitError("the vaegan objective needs an image discriminator: use --model vae-gan")
        out = model(x, c)
        t = elbo_terms(out, x)
        b = x.shape[0]
        x_rec = out.px.mean                                              # (B, *shape) x~ = Dec(z)
        x_gen = model.decode(model.prior_sample(b, c), c).mean           # (B, *shape) Dec(z_p)
        logits, features = model.discriminator(torch.cat([x.to(x_rec), x_rec, x_gen]), model.recon_layer)
        real, rec, gen = logits.split(b)                                 # (B, 1) each
        llike = feature_nll(features[:b], features[b:2 * b]).mean()
        gan = discriminator_loss(real, rec, gen)
        losses = {"main": kl_weight * t.kl.mean() + llike, "decoder": self.gamma * llike - gan,
                  "discriminator": gan}
        terms = {"elbo": t.elbo.mean(), "recon": t.recon.mean(), "kl": t.kl.mean(), "recon_dis": llike, "gan": gan}
        return LossOutput(losses, terms)
