"""JointVAE (Dupont 2018): structure ``jointvae``, objective ``joint-capacity``, variant ``jointvae``."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal

from vaekit.contract.output import Latent, ModelOutput
from vaekit.data import load_data
from vaekit.distributions.gumbel import GroupedConcrete, UniformCategorical
from vaekit.errors import VaekitError
from vaekit.models import elbo_terms, log_importance_weights
from vaekit.models.jointvae import JointCapacity
from vaekit.app.options import apply_options, base_config
from vaekit.models import build_model
from vaekit.train.schedules import linear_warmup

DIGITS = load_data("digits")
X = DIGITS.train.x[:16]


def small(variant="jointvae", sets=()):
    """A variant built small (MLP 32, continuous latent 4) for 8x8 digits, seeded."""
    cfg = apply_options(base_config(), {"model": variant, "hidden": [32], "latent_dim": 4}, sets=list(sets))
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    torch.manual_seed(0)
    return build_model(cfg.model)


class Stub:
    """A 'model' whose output has known terms: recon = 4 log 2, KL_cont = 0.5 * 2^2 = 2, KL_disc as given."""

    def __init__(self, probs):
        self.probs = torch.tensor(probs)

    def __call__(self, x, c=None):
        b, k = x.shape[0], len(self.probs)
        q_cont = Independent(Normal(torch.tensor([[2.0, 0.0]]).expand(b, 2), torch.ones(b, 2)), 1)
        q_disc = GroupedConcrete(self.probs.log().expand(b, k), 0.67, [k])
        px = Independent(Bernoulli(probs=torch.full((b, 4), 0.5)), 1)
        return ModelOutput(px, [Latent(q_cont, q_cont.mean, Independent(Normal(torch.zeros(2), torch.ones(2)), 1)),
                                Latent(q_disc, q_disc.mean, UniformCategorical(k, categories=k)())])


@pytest.mark.parametrize("w", [0.0, 0.2, 1.0])
def test_loss_by_hand_for_known_kls_and_capacities(w):
    probs = [0.7, 0.1] + [0.025] * 8                                     # K = 10
    kl_disc = sum(p * math.log(p * 10) for p in probs)                   # sum q log(q / (1/K))
    out = JointCapacity(gamma=30.0, c_max=5.0, c_max_disc=5.0)(Stub(probs), torch.ones(3, 4), kl_weight=w)
    c_z, c_c = 5.0 * w, min(5.0 * w, math.log(10))                      # 0|0, 1|1, 5|log 10 (clipped)
    recon = 4 * math.log(2)
    assert float(out.terms["kl_cont"]) == pytest.approx(2.0)
    assert float(out.terms["kl_disc"]) == pytest.approx(kl_disc)
    assert float(out.terms["capacity"]) == pytest.approx(c_z) and float(out.terms["capacity_disc"]) == pytest.approx(c_c)
    assert float(out.loss) == pytest.approx(recon + 30.0 * (abs(2.0 - c_z) + abs(kl_disc - c_c)), rel=1e-6)
    assert float(out.terms["elbo"]) == pytest.approx(-(recon + 2.0 + kl_disc), rel=1e-6)  # the true bound
    assert float(out.terms["kl"]) == pytest.approx(2.0 + kl_disc)


def test_capacity_schedule_rises_linearly_then_stays():
    """C(t) = min(t / T, 1) * c_max (the trainer's warm-up weight, T = warm-up steps)."""
    objective = JointCapacity(c_max=5.0, c_max_disc=2.0)
    q = [GroupedConcrete(torch.zeros(10), 0.67, [10])]
    got = [c for s in (0, 5000, 12500, 25000, 40000) for c in objective.capacities(linear_warmup(s, 25000), q)]
    assert got == pytest.approx([0.0, 0.0, 1.0, 0.4, 2.5, 1.0, 5.0, 2.0, 5.0, 2.0])


def test_discrete_capacity_is_clipped_at_sum_log_k():
    model = small("jointvae", sets=["model.structure.args.categories=[2,3]"])
    out = model(X)
    discrete = [layer.q for layer in out.latents[1:]]
    objective = JointCapacity(c_max=5.0, c_max_disc=5.0)
    assert objective.capacities(1.0, discrete) == pytest.approx((5.0, math.log(2) + math.log(3)))
    assert objective.capacities(0.1, discrete) == pytest.approx((0.5, 0.5))    # below the limit: not clipped
    assert objective.capacities(1.0, discrete[:1]) == pytest.approx((5.0, math.log(2)))


def test_kl_of_each_part_is_its_own_closed_form():
    model = small("jointvae", sets=["model.structure.args.categories=[10,3]"])
    torch.manual_seed(1)
    with torch.no_grad():
        out = model(X)
        t = elbo_terms(out, X)
        h = model.encoder(X, None)
        mu, logvar = model.posteriors[0].head(h).chunk(2, dim=-1)           # the Gaussian part alone
        kl_cont = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)       # Kingma & Welling, app. B
        kls_disc = []
        for head, k in zip(model.posteriors[1:], (10, 3)):                   # each categorical part alone
            p = head.head(h).softmax(-1)
            kls_disc.append((p * (p * k).log()).sum(-1))                     # log K - H(q)
    assert len(t.kls) == 3 and model.latent_dim == 4 + 13
    torch.testing.assert_close(t.kls[0], kl_cont)
    torch.testing.assert_close(t.kls[1], kls_disc[0])
    torch.testing.assert_close(t.kls[2], kls_disc[1])
    torch.testing.assert_close(t.kl, kl_cont + kls_disc[0] + kls_disc[1])


def test_decode_reads_the_concatenation_of_both_parts():
    model = small("jointvae")
    torch.manual_seed(2)
    with torch.no_grad():
        out = model(X)
        z = torch.cat([layer.z for layer in out.latents], dim=-1)             # (B, 4 + 10)
        assert z.shape == (16, 14) and model.latent_dim == 14
        torch.testing.assert_close(model.decode(z).mean, out.px.mean)
        torch.testing.assert_close(model.decode(z).mean, model.likelihood(model.decoder(z, None)).mean)
        # the decoder sees both parts: changing either changes the image
        other = torch.eye(10)[torch.arange(16) % 10]
        assert not torch.allclose(model.decode(torch.cat([z[:, :4], other], -1)).mean, out.px.mean)
        assert not torch.allclose(model.decode(torch.cat([z[:, :4] + 1, z[:, 4:]], -1)).mean, out.px.mean)


def test_embed_sample_and_bounds():
    model = small("jointvae")
    with torch.no_grad():
        e = model.embed(X)                                                      # (B, 14)
        h = model.encoder(X, None)
        torch.testing.assert_close(e, torch.cat([model.posteriors[0](h).mean, model.posteriors[1](h).probs], -1))
        torch.manual_seed(0)
        z = model.prior_sample(200)
        assert z.shape == (200, 14)
        assert bool(((z[:, 4:] == 0) | (z[:, 4:] == 1)).all()) and bool((z[:, 4:].sum(-1) == 1).all())
        assert model.sample(5).shape == (5, 1, 8, 8)
        assert model.encode(X).variance.shape == (16, 14)
        q = model.encode(X)
        torch.testing.assert_close(q.log_prob(q.sample()).shape, torch.Size([16]))
        lw = log_importance_weights(model, X, k=3)
        assert lw.shape == (3, 16) and bool(torch.isfinite(lw).all())


def test_bad_input_is_refused():
    with pytest.raises(VaekitError, match="categories"):
        small("jointvae", sets=["model.structure.args.categories=[10,1]"])
    with pytest.raises(VaekitError, match="continuous and a discrete"):
        JointCapacity()(small("vae"), X)
    with pytest.raises(VaekitError, match="c_max_disc"):
        JointCapacity(c_max_disc=-1.0)


def test_default_latent_is_ten_continuous_and_ten_categorical():
    """test_contract.py trains and evaluates jointvae at latent 4; the variant's own default is 10 + 10."""
    cfg = apply_options(base_config(), {"model": "jointvae", "hidden": [32]})
    cfg.model.data_shape, cfg.model.num_classes = [1, 8, 8], 10
    assert cfg.model.variant == "jointvae" and build_model(cfg.model).latent_dim == 20
