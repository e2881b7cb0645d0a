"""The model zoo: every variant ``vaekit train --model NAME`` trains, as plain data.

A variant is a named composition of registered parts: a partial run config applied on top of
the defaults (``vaekit.app.options.apply_variant``). It names only what differs from the
default composition (a Gaussian VAE trained on the ELBO): a part's own defaults, the papers'
values, live once, in that part's constructor signature. A recipe of the same name adds the
paper's training settings (``vaekit/recipes/NAME.json``).

This module needs no torch, so ``vaekit models`` and ``--help`` list the zoo at once; the
parts it names are registered where they are implemented (``MODELS``, ``OBJECTIVES``, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class Variant:
    """An entry of the zoo. ``config`` is a partial run config: ``{"model": {...}, "train": {...}}``."""

    name: str
    description: str
    paper: str
    config: Dict[str, Any] = field(default_factory=dict)


def part(name: str, **args) -> dict:
    """A part of a config, ``{name, args}``; ``args`` only where they differ from its constructor's defaults."""
    return {"name": name, "args": args}


def variant(name: str, description: str, paper: str, **config) -> Variant:
    return Variant(name, description, paper, config)


def adam(lr: float, betas: Tuple[float, float]) -> dict:
    """An Adam optimizer of its own for a model's ``discriminator`` parameter group."""
    return {"discriminator": {"name": "adam", "args": {"lr": lr, "betas": list(betas)}}}


KINGMA = "Kingma & Welling 2014, Auto-Encoding Variational Bayes"
RAINFORTH = "Rainforth et al. 2018, Tighter Variational Bounds are Not Necessarily Better"
DIP = ("Kumar, Sattigeri & Balakrishnan 2018, Variational Inference of Disentangled Latent Concepts from "
       "Unlabeled Observations")
FLOWS = "Rezende & Mohamed 2015, Variational Inference with Normalizing Flows"
RAE = ("Ghosh, Sajjadi, Vergari, Black & Schoelkopf 2020, From Variational to Deterministic Autoencoders "
       "(ICLR 2020)")

ZOO: Tuple[Variant, ...] = (
    # -- the Gaussian VAE and its objectives --------------------------------------------
    variant("vae", "The variational autoencoder: one Gaussian latent, standard-normal prior, ELBO.", KINGMA),
    variant("cvae", "Conditional VAE: the one-hot class label is fed to encoder and decoder.",
            "Sohn et al. 2015, Learning Structured Output Representation using Deep Conditional Generative Models",
            model={"conditional": True}),
    variant("beta-vae", "beta-VAE: the ELBO's KL term weighted by beta > 1 for more disentangled latents.",
            "Higgins et al. 2017, beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
            train={"objective": part("elbo", beta=4.0)}),
    variant("capacity", "beta-VAE with capacity annealing: the KL is pulled to a target C that rises linearly "
            "to c_max over the warm-up epochs.", "Burgess et al. 2018, Understanding disentangling in beta-VAE",
            model={"latent_dim": 10}, train={"objective": part("capacity"), "warmup_epochs": 20}),
    variant("beta-tc", "beta-TC-VAE: penalises the total correlation of q(z), estimated on the minibatch, "
            "with weight beta.", "Chen, Li, Grosse & Duvenaud 2018, Isolating Sources of Disentanglement in "
            "Variational Autoencoders", model={"latent_dim": 10}, train={"objective": part("beta-tc")}),
    variant("dip-vae-i", "DIP-VAE-I: the ELBO plus a penalty pushing the covariance of the posterior means to "
            "the identity.", DIP, model={"latent_dim": 10}, train={"objective": part("dip-vae", lambda_d=100.0)}),
    variant("dip-vae-ii", "DIP-VAE-II: the ELBO plus a penalty pushing the covariance of q(z) to the identity.",
            DIP, model={"latent_dim": 10}, train={"objective": part("dip-vae", kind="ii", lambda_d=10.0)}),
    variant("wae-mmd", "Wasserstein auto-encoder (WAE-MMD): reconstruction plus lambda times the MMD between "
            "the aggregate posterior and the prior, no KL.",
            "Tolstikhin, Bousquet, Gelly & Schoelkopf 2018, Wasserstein Auto-Encoders",
            train={"objective": part("mmd")}),
    variant("infovae", "InfoVAE (MMD-VAE): reconstruction, (1 - alpha) KL and (alpha + lambda - 1) MMD between "
            "the aggregate posterior and the prior.",
            "Zhao, Song & Ermon 2019, InfoVAE: Balancing Learning and Inference in Variational Autoencoders",
            train={"objective": part("mmd", kernel="rbf", lam=1000.0, alpha=0.0)}),
    variant("swae", "Sliced-Wasserstein auto-encoder: reconstruction plus lambda times the sliced Wasserstein "
            "distance between the aggregate posterior and the prior, no KL.",
            "Kolouri, Pope, Martin & Rohde 2019, Sliced-Wasserstein Autoencoder: An Embarrassingly Simple "
            "Generative Model", train={"objective": part("swae")}),
    variant("msssim-vae", "MSSSIM-VAE: the reconstruction term is 1 - MS-SSIM (a perceptual image similarity) "
            "between the image and the decoder's mean, plus beta times the KL.",
            "Snell, Ridgeway, Liao, Roads, Mozer & Zemel 2017, Learning to Generate Images with Perceptual "
            "Similarity Metrics", train={"objective": part("msssim")}),
    variant("iwae", "Importance-weighted autoencoder: trains on a k-sample bound tighter than the ELBO.",
            "Burda, Grosse & Salakhutdinov 2016, Importance Weighted Autoencoders",
            train={"objective": part("iwae")}),
    variant("miwae", "MIWAE: the average of M importance-weighted bounds of K samples each, for a better "
            "encoder gradient than one IWAE bound.", RAINFORTH, train={"objective": part("miwae")}),
    variant("ciwae", "CIWAE: trains on beta * ELBO + (1 - beta) * IWAE from the same K samples.", RAINFORTH,
            train={"objective": part("ciwae")}),
    # -- other likelihoods p(x|z) --------------------------------------------------------
    variant("sigma-vae", "sigma-VAE: a Gaussian decoder with the optimal shared variance (the batch's mean "
            "squared error), so the reconstruction and KL terms stay balanced.",
            "Rybkin, Daniilidis & Levine 2021, Simple and Effective VAE Training with Calibrated Decoders",
            model={"likelihood": part("gaussian")}),  # its sigma="optimal" is the gaussian likelihood's default
    variant("cb-vae", "VAE with the continuous Bernoulli likelihood: a normalised density for grey values in "
            "[0, 1].", "Loaiza-Ganem & Cunningham 2019, The continuous Bernoulli: fixing a pervasive error in "
            "variational autoencoders", model={"likelihood": part("continuous-bernoulli")}),
    variant("laplace-vae", "VAE with a Laplace likelihood (L1 reconstruction) and a learned shared scale.",
            KINGMA + " (with a Laplace decoder: an L1 loss)", model={"likelihood": part("laplace")}),
    variant("dlogistic-vae", "VAE whose decoder is a discretized logistic mixture over each value's levels (256 "
            "for 8-bit images; the data's own levels otherwise): an exact pmf, so bits per dimension are exact.",
            "Salimans, Karpathy, Chen & Kingma 2017, PixelCNN++ (the discretized logistic mixture likelihood)",
            model={"likelihood": part("dlogistic")}),
    variant("categorical-vae", "VAE whose decoder is a free softmax over each value's levels (256-way for 8-bit "
            "images): an exact pmf with no shape imposed on it.", "van den Oord, Kalchbrenner & Kavukcuoglu "
            "2016, Pixel Recurrent Neural Networks (the 256-way softmax)",
            model={"likelihood": part("categorical256")}),
    # -- other posteriors and priors -----------------------------------------------------
    variant("planar-vae", "VAE whose Gaussian posterior is refined by planar normalizing flows (amortised).",
            FLOWS, model={"posterior": part("planar")}),
    variant("radial-vae", "VAE whose Gaussian posterior is refined by radial normalizing flows (amortised).",
            FLOWS, model={"posterior": part("radial")}),
    variant("iaf-vae", "VAE whose Gaussian posterior is refined by inverse autoregressive flow steps.",
            "Kingma et al. 2016, Improved Variational Inference with Inverse Autoregressive Flow",
            model={"posterior": part("iaf")}),
    variant("vamp", "VAE with a VampPrior: the prior is a mixture of the posterior at learned pseudo-inputs.",
            "Tomczak & Welling 2018, VAE with a VampPrior", model={"prior": part("vamp")}),
    variant("mog-vae", "VAE with a learned mixture-of-Gaussians prior (K diagonal components).",
            "Dilokthanakul et al. 2016, Deep Unsupervised Clustering with Gaussian Mixture Variational "
            "Autoencoders; Tomczak & Welling 2018, VAE with a VampPrior (the MoG prior baseline)",
            model={"prior": part("mog")}),
    variant("svae", "Hyperspherical VAE (S-VAE): a von Mises-Fisher posterior and a uniform prior on the unit "
            "sphere S^(m-1), m = latent_dim (default 10); analytic KL; Wood's rejection sampler, reparameterized.",
            "Davidson, Falorsi, De Cao, Kipf & Tomczak 2018, Hyperspherical Variational Auto-Encoders",
            model={"posterior": part("vmf"), "prior": part("uniform-sphere"), "latent_dim": 10}),
    variant("gumbel-vae", "VAE with a categorical latent relaxed by Gumbel-softmax: groups of 10-way relaxed "
            "one-hot vectors, uniform categorical prior. Its elbo uses the discrete KL (Jang et al.'s surrogate); "
            "importance sampling uses Concrete densities (a bound on the relaxed model).",
            "Jang, Gu & Poole 2017, Categorical Reparameterization with Gumbel-Softmax; Maddison, Mnih & Teh "
            "2017, The Concrete Distribution",
            model={"posterior": part("gumbel"), "prior": part("uniform-categorical"), "latent_dim": 30}),
    variant("pvae", "Poincaré VAE: a hyperbolic latent (Poincaré ball, curvature 0.7) with a wrapped-normal "
            "posterior and prior; the decoder reads the ball point directly; KL by Monte Carlo.",
            "Mathieu, Le Lan, Maddison, Tomioka & Teh 2019, Continuous Hierarchical Representations with "
            "Poincaré Variational Auto-Encoders",
            model={"posterior": part("wrapped-normal", curvature=0.7),
                   "prior": part("wrapped-normal-origin", curvature=0.7), "latent_dim": 2}),
    # -- other structures ----------------------------------------------------------------
    variant("ladder", "Ladder VAE: a hierarchy of Gaussian latents whose posteriors combine a bottom-up "
            "estimate with the top-down prior.", "Sønderby et al. 2016, Ladder Variational Autoencoders",
            model={"structure": part("ladder")}),
    variant("hvae", "Hamiltonian VAE: the Gaussian posterior sample is moved by tempered leapfrog steps on "
            "log p(x, z), a target-informed flow.",
            "Caterini, Doucet & Sejdinovic 2018, Hamiltonian Variational Auto-Encoder (NeurIPS)",
            model={"structure": part("hvae")}),
    variant("jointvae", "JointVAE: a Gaussian and a Gumbel-softmax categorical latent side by side, each KL "
            "pulled to its own rising capacity.",
            "Dupont 2018, Learning Disentangled Joint Continuous and Discrete Representations",
            model={"structure": part("jointvae"), "latent_dim": 10},
            train={"objective": part("joint-capacity"), "warmup_epochs": 15}),
    variant("piwae", "PIWAE: the encoder trained on the MIWAE bound, the decoder on the tighter IWAE bound, "
            "each with its own optimizer.", RAINFORTH,
            model={"structure": part("piwae")}, train={"objective": part("piwae")}),
    variant("vqvae", "VQ-VAE: discrete latent codes from an EMA-learned codebook; a categorical prior over codes "
            "is fitted to the training data for sampling.",
            "van den Oord, Vinyals & Kavukcuoglu 2017, Neural Discrete Representation Learning",
            model={"structure": part("vqvae")}, train={"objective": part("vq")}),
    variant("vqgan", "VQGAN's quantized autoencoder: a codebook learned by gradient (codebook loss plus commitment "
            "0.25, straight-through), meant for the ResNet's latent map (--recipe vqgan).",
            "Esser, Rombach & Ommer 2021, Taming Transformers for High-Resolution Image Synthesis",
            model={"structure": part("vqgan")}, train={"objective": part("vq")}),
    variant("fsq", "Finite scalar quantization: each latent channel bounded and rounded to a few levels (8,5,5,5: "
            "an implicit codebook of 1000 codes), straight-through, no codebook loss.",
            "Mentzer, Minnen, Agustsson & Tschannen 2023, Finite Scalar Quantization: VQ-VAE Made Simple",
            model={"structure": part("fsq")}, train={"objective": part("vq", commitment=0.0)}),
    variant("rvq", "Residual vector quantization: N stages of EMA codebooks, each quantizing what the stages "
            "before left.", "Zeghidour, Luebs, Omran, Skoglund & Tagliasacchi 2021, SoundStream: An End-to-End "
            "Neural Audio Codec", model={"structure": part("rvq")}, train={"objective": part("vq")}),
    variant("factorvae", "FactorVAE: penalises the total correlation of q(z), estimated by a discriminator "
            "with its own optimizer.", "Kim & Mnih 2018, Disentangling by Factorising",
            model={"structure": part("factorvae"), "latent_dim": 10},
            train={"objective": part("factor"), "group_optimizers": adam(1e-4, (0.5, 0.9))}),
    variant("aae", "Adversarial autoencoder: a latent discriminator, not a KL, matches q(z) to the prior.",
            "Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016, Adversarial Autoencoders",
            model={"structure": part("aae")},
            train={"objective": part("aae"), "group_optimizers": adam(2e-4, (0.5, 0.999))}),
    variant("vae-gan", "VAE-GAN: the reconstruction is measured in a GAN discriminator's features; the decoder "
            "also learns to fool it.", "Larsen, Sonderby, Larochelle & Winther 2016, Autoencoding beyond pixels "
            "using a learned similarity metric", model={"structure": part("vaegan")},
            train={"objective": part("vaegan"), "group_optimizers": adam(2e-4, (0.5, 0.999))}),
    # -- deterministic autoencoders with an ex-post density --------------------------------
    variant("ae", "Deterministic autoencoder baseline: reconstruction only; a Gaussian fitted to the training "
            "codes after each epoch is the prior for sampling.", RAE,
            model={"structure": part("ae")}, train={"objective": part("ae")}),
    variant("rae-l2", "Regularized autoencoder RAE-L2: reconstruction, beta ||z||^2 / 2 and L2 weight decay on "
            "the decoder; ex-post Gaussian prior for sampling.", RAE,
            model={"structure": part("ae")}, train={"objective": part("rae")}),
    variant("rae-gp", "Regularized autoencoder RAE-GP: reconstruction, beta ||z||^2 / 2 and a gradient penalty "
            "||grad_z D(z)||^2 on the decoder; ex-post Gaussian prior for sampling.", RAE,
            model={"structure": part("ae")}, train={"objective": part("rae", penalty="gp")}),
)
