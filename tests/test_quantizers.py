"""The quantizers of vqvae, vqgan, fsq and rvq: known answers for each formula, and a run that resumes exactly."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models.quantizers import EMACodebook, FiniteScalar, LearnedCodebook, ResidualVQ, codebook_stats

from conftest import run_cli

DIGITS = vaekit.load_data("digits")
# a resnet latent map of 4 channels on 8x8 digits: 4 x 4 positions
MAP = dict(network="resnet", widths=[8, 16], blocks=1, latent_channels=4, batch_size=32, progress=False)


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """96 digits in a .npz: three steps an epoch at batch 32."""
    path = tmp_path_factory.mktemp("few") / "few.npz"
    np.savez(path, x=DIGITS.train.x[:96].numpy())
    return str(path)


def test_perplexity_and_usage_known_answers():
    usage, perplexity = codebook_stats(torch.arange(8).repeat(5), 8)             # every code equally often
    assert float(usage) == 1.0 and float(perplexity) == pytest.approx(8.0)
    usage, perplexity = codebook_stats(torch.full((40,), 3), 8)                   # one code
    assert float(usage) == 1 / 8 and float(perplexity) == pytest.approx(1.0)
    usage, perplexity = codebook_stats(torch.tensor([0, 0, 1, 1]), 4)             # two codes of four, evenly
    assert float(usage) == 0.5 and float(perplexity) == pytest.approx(2.0)


def test_fsq_rounds_to_the_level_grid_and_its_index_is_a_bijection():
    levels = [8, 5, 3, 2]
    fsq = FiniteScalar(levels)
    assert fsq.codes == 240 and fsq.bits == pytest.approx(math.log2(240))
    torch.manual_seed(0)
    q = fsq(torch.randn(4000, 4) * 3)
    width = torch.tensor([4.0, 2.0, 1.0, 1.0])
    scaled = q.z * width                                  # back to the integer levels
    assert torch.equal(scaled, scaled.round())
    for i, L in enumerate(levels):                        # L values each, every one reached
        assert sorted(set(scaled[:, i].tolist())) == [float(v - L // 2) for v in range(L)], (i, L)
    # the index is a bijection onto 0 .. prod(L) - 1: lookup gives every grid point once, and back
    index = torch.arange(240)[:, None]
    grid = fsq.lookup(index)
    assert len({tuple(v) for v in grid.tolist()}) == 240
    assert torch.equal(fsq(torch.atanh(((grid * width + fsq.offset) / fsq.bound).clamp(-0.999, 0.999))
                           - fsq.shift).index, index)
    expected = {tuple(float(v - L // 2) / (L // 2) for v, L in zip(p, levels))
                for p in itertools.product(*[range(L) for L in levels])}
    assert {tuple(v) for v in grid.tolist()} == expected


def test_fsq_gradient_is_straight_through_the_rounding():
    fsq = FiniteScalar([5])
    ze = torch.tensor([[0.3]], requires_grad=True)
    fsq(ze).z.sum().backward()
    # d/dz [tanh(z) (5 - 1)(1 + eps) / 2] / floor(5 / 2) = (1 + eps)(1 - tanh^2 z): the bound's, not round's zero
    assert float(ze.grad) == pytest.approx(1.001 * (1 - math.tanh(0.3) ** 2), rel=1e-5)


def test_ema_codebook_step_with_laplace_smoothing_is_the_hand_recurrence():
    book = EMACodebook(codes=3, dim=1, decay=0.8, eps=0.1, restart=0.0)
    book.started.fill_(True)
    book.embedding.copy_(torch.tensor([[0.0], [5.0], [10.0]]))
    book.ema_count.copy_(torch.tensor([2.0, 1.0, 1.0]))
    book.ema_weight.copy_(torch.tensor([[0.0], [5.0], [10.0]]))
    ze = torch.tensor([[1.0], [2.0], [6.0]])
    book.update(ze, book.nearest(ze))                      # codes 0, 0, 1; code 2 unused
    count = 0.8 * torch.tensor([2.0, 1.0, 1.0]) + 0.2 * torch.tensor([2.0, 1.0, 0.0])
    weight = 0.8 * torch.tensor([0.0, 5.0, 10.0]) + 0.2 * torch.tensor([3.0, 6.0, 0.0])
    n = count.sum()
    smoothed = (count + 0.1) / (n + 3 * 0.1) * n           # van den Oord et al. 2017, app. A.1; SoundStream
    assert torch.allclose(book.ema_count, count)
    assert torch.allclose(book.embedding[:, 0], weight / smoothed)


def test_rvq_residual_shrinks_stage_by_stage_on_data():
    torch.manual_seed(0)
    x = DIGITS.train.x[:512].flatten(1)[:, :16]            # 16-D vectors of real digits
    rvq = ResidualVQ(codes=16, dim=16, stages=4, decay=0.9)
    for _ in range(10):
        rvq(x)                                             # the first call initialises, then EMA steps
    rvq.eval()
    norms = [float(x.pow(2).sum(1).mean())] + [float(r.pow(2).sum(1).mean()) for r in rvq.residuals(x)]
    assert all(b < a for a, b in zip(norms, norms[1:])), norms
    q = rvq(x)
    assert q.index.shape == (512, 4) and torch.allclose(q.z, rvq.lookup(q.index), atol=1e-5)
    assert torch.allclose(x - q.z, rvq.residuals(x)[-1], atol=1e-5)


def test_learned_codebook_loss_moves_codes_and_commitment_moves_the_encoder():
    """Esser et al. 2021, eq. 4: ||sg[ze] - zq||^2 trains the codes only, ||ze - sg[zq]||^2 the encoder only,
    and the decoder's gradient reaches ze unchanged (straight-through)."""
    book = LearnedCodebook(codes=2, dim=2)
    with torch.no_grad():
        book.embedding.copy_(torch.tensor([[0.0, 0.0], [4.0, 4.0]]))
    ze = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], requires_grad=True)
    q = book(ze)
    assert q.index[:, 0].tolist() == [0, 0, 1] and torch.equal(q.z, book.embedding[q.index[:, 0]])
    grad_e, = torch.autograd.grad(q.losses["codebook"].sum(), book.embedding, retain_graph=True)
    assert torch.allclose(grad_e, torch.tensor([[-2.0, -4.0], [2.0, 2.0]]))       # 2 sum_j (e_k - ze_j)
    grads = torch.autograd.grad(q.losses["commitment"].sum(), [ze, book.embedding], retain_graph=True,
                                allow_unused=True)
    assert grads[1] is None and torch.allclose(grads[0], 2 * (ze - q.z).detach())
    upstream = torch.randn(3, 2)
    assert torch.equal(torch.autograd.grad(q.z, ze, upstream)[0], upstream)


def test_vq_objective_is_reconstruction_plus_codebook_plus_beta_commitment():
    from vaekit.app.options import apply_options, base_config
    from vaekit.models import build_model
    from vaekit.train import build_objective

    cfg = apply_options(base_config(), {"model": "vqgan", "hidden": [16], "latent_dim": 2},
                        sets=["model.structure.args.codes=8", "model.structure.args.code_dim=2"])
    cfg.model.data_shape, cfg.model.num_classes = list(DIGITS.info.shape), DIGITS.info.num_classes
    torch.manual_seed(0)
    out = build_objective(cfg)(build_model(cfg.model, name="vqgan"), DIGITS.train.x[:16])
    t = {k: v.detach() for k, v in out.terms.items()}
    assert float(t["codebook"]) > 0 and float(t["commitment"]) == pytest.approx(float(t["codebook"]))
    assert float(out.losses["main"].detach()) == pytest.approx(float(t["recon"] + t["codebook"] + 0.25 * t["commitment"]))


def test_unused_codes_restart_at_batch_vectors_after_n_steps():
    torch.manual_seed(0)
    book = LearnedCodebook(codes=4, dim=2, restart_after=2)
    with torch.no_grad():
        book.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [-50.0, 50.0]]))
    ze = torch.tensor([[0.1, 0.0], [0.9, 1.0], [0.0, 0.2]])  # only codes 0 and 1 are near
    book(ze)
    assert book.idle.tolist() == [0, 0, 1, 1] and book.embedding[2, 0] == 50.0
    book(ze)                                                  # codes 2 and 3: 2 steps unused -> restarted
    assert book.idle.tolist() == [0, 0, 0, 0]
    rows = {tuple(v) for v in ze.tolist()}
    assert tuple(book.embedding[2].tolist()) in rows and tuple(book.embedding[3].tolist()) in rows


def test_vqvae_on_a_latent_map_samples_and_reports_its_codebook(few, tmp_path, capsys):
    model = vaekit.train(few, model="vqvae", out=tmp_path / "vq", epochs=1, seed=0, **MAP,
                         sets=["model.structure.args.codes=16"])
    x = DIGITS.test.x[:5]
    assert model.latent_shape == (4, 4, 4) and model.embed(x).shape == (5, 4, 4, 4)
    assert model.prior_logits.shape == (16, 16)             # a categorical prior per map position
    with torch.no_grad():                                   # position (i, j) of the map is quantized on its own
        means = model.encoder(x)[:, :4]                     # the moment map's first C channels
        index, chosen = model.codes_of(x).view(5, 4, 4), model.embed(x)
        for i, j in [(0, 0), (1, 3), (3, 2)]:
            assert torch.equal(index[:, i, j], model.codebook.nearest(means[:, :, i, j]))
            assert torch.equal(chosen[:, :, i, j], model.codebook.embedding[index[:, i, j]])
    assert model.sample(3).shape == (3, 1, 8, 8)
    code, out, err = run_cli(["evaluate", tmp_path / "vq", "--metrics", "codebook", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and 0 < result["usage"] <= 1 and 1 <= result["perplexity"] <= 16, err
    assert result["bits_per_code"] == 4.0


def test_codebook_metric_says_why_for_a_model_without_codes(zoo_run, capsys):
    code, _, err = run_cli(["evaluate", zoo_run("vae"), "--metrics", "codebook"], capsys)
    assert code != 0 and "has no codebook" in err and len(err.strip().splitlines()) == 1, err


def test_fsq_levels_must_match_the_map_channels(tmp_path):
    with pytest.raises(VaekitError, match="set --latent-channels 3"):
        vaekit.train("digits", model="fsq", out=tmp_path / "f", epochs=1, **MAP,
                     sets=["model.structure.args.levels=[4,4,4]"])
    with pytest.raises(VaekitError, match="fsq needs levels"):
        vaekit.train("digits", model="fsq", out=tmp_path / "f", epochs=1, **MAP,
                     sets=["model.structure.args.levels=[4,1,4,4]"])
    assert not (tmp_path / "f").exists()


def test_ema_codebooks_with_restarts_resume_exactly(few, tmp_path):
    """An rvq run on a latent map (EMA buffers and idle counters in state.pt): 2 + 1 epochs == 3 epochs."""
    common = dict(model="rvq", seed=3, **MAP, sets=["model.structure.args.codes=16", "model.structure.args.stages=2",
                                                    "model.structure.args.restart_after=1"])
    straight = vaekit.train(few, out=tmp_path / "straight", epochs=3, **common)
    vaekit.train(few, out=tmp_path / "split", epochs=2, **common)
    split = vaekit.train(out=tmp_path / "split", resume=True, epochs=3, progress=False)
    a, b = straight.state_dict(), split.state_dict()
    assert "codebook.books.1.idle" in a and int(a["codebook.books.1.idle"].max()) <= 1
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k],
                                                                                                             b[k])]
