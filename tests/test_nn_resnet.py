"""The resnet network family: shapes for any image size and channel count, both latent shapes,
gradients, attention, GroupNorm groups, diffusers' key layout, and training through vaekit.train."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import vaekit
from vaekit import rundir
from vaekit.errors import VaekitError
from vaekit.nn.blocks import Attention, Downsample, groups
from vaekit.nn.resnet import ResNetDecoder, ResNetEncoder

TINY = dict(widths=[8, 16], blocks=1)


def pair(shape, latent_dim=5, params=1, **args):
    torch.manual_seed(0)
    args = {**TINY, **args}
    return ResNetEncoder(shape, **args), ResNetDecoder(latent_dim, shape, params, **args)


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 15, 17), (4, 16, 16), (3, 9, 8)])
@pytest.mark.parametrize("attention", [False, True])
def test_vector_latent_shapes(shape, attention):
    enc, dec = pair(shape, params=2, attention=attention)
    x = torch.randn(3, *shape)
    h = enc(x)
    assert h.shape == (3, enc.out_dim) and not hasattr(enc, "latent_shape")
    assert dec(torch.randn(3, 5)).shape == (3, 2 * shape[0], *shape[1:])


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 15, 17), (4, 16, 16)])
def test_spatial_latent_shapes(shape):
    enc, dec = pair(shape, latent_channels=4, attention=True)
    h = enc(torch.randn(2, *shape))
    c, hh, ww = enc.latent_shape
    assert enc.out_dim is None and c == 4 and (hh, ww) == (shape[1] // 2, shape[2] // 2)
    assert h.shape == (2, 2 * c, hh, ww)  # means, then log-variances
    z = h[:, :c]
    out = dec(z)
    assert out.shape == (2, *shape)
    torch.testing.assert_close(dec(z.flatten(1)), out)  # a flattened latent is the same map


def test_three_levels_on_odd_sizes_land_on_the_input_size():
    enc, dec = pair((3, 27, 13), widths=[4, 8, 8], latent_channels=2)
    assert enc.latent_shape == (2, 6, 3)  # 27 -> 13 -> 6, 13 -> 6 -> 3
    assert dec(torch.randn(1, 2, 6, 3)).shape == (1, 3, 27, 13)


def test_gradients_reach_every_parameter():
    for args in (dict(attention=True), dict(attention=True, latent_channels=3)):
        cond = 0 if "latent_channels" in args else 4
        enc, dec = pair((3, 15, 17), cond_dim=cond, **args)
        x, c = torch.randn(2, 3, 15, 17), (torch.eye(4)[:2] if cond else None)
        h = enc(x, c)
        z = h[:, :3] if "latent_channels" in args else torch.randn(2, 5) + h.mean()
        loss = dec(z, c).square().mean()
        loss.backward()
        for name, p in [*enc.named_parameters(prefix="encoder"), *dec.named_parameters(prefix="decoder")]:
            assert p.grad is not None and bool((p.grad != 0).any()), (args, name)


def test_attention_adds_one_block_in_each_mid_block():
    off, on = pair((1, 8, 8)), pair((1, 8, 8), attention=True)
    keys_off = {k for m in off for k in m.state_dict()}
    keys_on = {k for m in on for k in m.state_dict()}
    assert not any("attentions" in k for k in keys_off)
    assert {k.rsplit(".", 1)[0] for k in keys_on - keys_off} == {
        f"mid_block.attentions.0.{n}" for n in ("group_norm", "to_q", "to_k", "to_v", "to_out.0")}


def test_group_norm_groups_on_small_widths():
    assert [groups(c) for c in (1, 4, 8, 12, 15, 48, 64, 512)] == [1, 4, 8, 12, 15, 24, 32, 32]
    enc, dec = pair((3, 8, 8), widths=[6, 12])
    norms = [m for m in [*enc.modules(), *dec.modules()] if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_channels % m.num_groups == 0 for m in norms)
    assert {m.num_groups for m in norms} == {6, 12}


def test_downsampling_pads_bottom_right_as_diffusers():
    torch.manual_seed(0)
    down, x = Downsample(2), torch.randn(1, 2, 7, 8)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), down.conv.weight, down.conv.bias, stride=2)
    assert torch.equal(down(x), expected) and expected.shape[-2:] == (3, 4)


def test_channels_last_inside_standard_layout_outside():
    """The networks compute in channels-last on the CPU (blocks.feature_layout), yet hand on standard-layout
    tensors, and their parameters and gradients (what checkpoints and exports hold) keep the standard layout."""
    enc, dec = pair((3, 15, 17), latent_channels=4, attention=True)
    seen = []
    enc.down_blocks[0].resnets[0].register_forward_hook(lambda m, i, o: seen.append(o))
    h = enc(torch.randn(2, 3, 15, 17))
    out = dec(torch.randn(2, *enc.latent_shape))
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    assert h.is_contiguous() and out.is_contiguous()
    (h.square().sum() + out.square().sum()).backward()
    for p in [*enc.parameters(), *dec.parameters()]:
        assert p.is_contiguous() and p.grad.is_contiguous()


def test_attention_is_softmax_of_scaled_dot_products():
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V (Vaswani et al. 2017, eq. 1), one head over positions."""
    torch.manual_seed(0)
    att = Attention(8, norm_groups=4)
    x = torch.randn(2, 8, 3, 5)
    t = att.group_norm(x).flatten(2).transpose(1, 2)
    q, k, v = att.to_q(t), att.to_k(t), att.to_v(t)
    out = torch.softmax(q @ k.transpose(1, 2) / 8 ** 0.5, dim=-1) @ v
    expected = x + att.to_out[0](out).transpose(1, 2).reshape(2, 8, 3, 5)
    torch.testing.assert_close(att(x), expected, atol=1e-5, rtol=1e-5)


def test_key_layout_follows_diffusers_autoencoder_kl():
    enc, dec = pair((3, 16, 16), widths=[8, 16], blocks=2, attention=True, latent_channels=4)
    keys = set(enc.state_dict()) | {"decoder." + k for k in dec.state_dict()}
    for k in ("conv_in.weight", "down_blocks.0.resnets.1.norm2.weight", "down_blocks.0.downsamplers.0.conv.weight",
              "down_blocks.1.resnets.0.conv_shortcut.weight", "mid_block.resnets.1.conv2.bias",
              "mid_block.attentions.0.to_out.0.weight", "conv_norm_out.weight", "conv_out.weight", "quant_conv.weight",
              "decoder.post_quant_conv.weight", "decoder.up_blocks.0.resnets.2.conv1.weight",
              "decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
              "decoder.mid_block.attentions.0.to_q.weight", "decoder.conv_out.bias"):
        assert k in keys, k
    assert not any(k.startswith("down_blocks.1.downsamplers") or "up_blocks.1.upsamplers" in k for k in keys)
    assert enc.quant_conv.weight.shape == (8, 8, 1, 1) and dec.conv_out.weight.shape[0] == 3


@pytest.mark.parametrize("args, data_shape, match", [
    (dict(widths=[8, 16, 16, 16]), (1, 4, 4), "halves the image 3 times.*4x4.*fewer widths"),
    (dict(downsample=8), (1, 16, 16), "--downsample 8 does not match --widths 8,16.*give 4 widths"),
    (dict(latent_channels=2, cond_dim=3), (1, 8, 8), "spatial latent.*no condition"),
    (dict(blocks=0), (1, 8, 8), "--blocks >= 1"),
    ({}, (64,), "needs images of shape"),
])
def test_clear_errors(args, data_shape, match):
    with pytest.raises(VaekitError, match=match):
        ResNetEncoder(data_shape, **{**TINY, **args})


def test_downsample_matching_the_levels_is_accepted():
    enc, _ = pair((1, 16, 16), widths=[4, 4, 4, 4], downsample=8, latent_channels=1)
    assert enc.latent_shape == (1, 2, 2)


# -- through vaekit.train --------------------------------------------------------------------
VARIANTS = ["vae", "beta-vae", "iwae", "vamp", "aae", "vae-gan"]
SPEED = {"iwae": ["train.objective.args.k=3"], "vamp": ["model.prior.args.components=10"],
         "vae-gan": ["model.structure.args.disc_widths=[8,16]"]}
SMALL = dict(network="resnet", widths=[8, 16], blocks=1, dense=16, latent_dim=4, progress=False)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """A tiny generated colour image set, 16x16: smooth random blobs in [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    centres, colours = rng.random((96, 2)), rng.random((96, 3, 1, 1))
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 0.05)
    x = (colours * blobs[:, None]).astype(np.float32)
    path = tmp_path_factory.mktemp("rgb") / "rgb.npz"
    np.savez(path, x=x)
    return str(path)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("data", ["digits", "rgb"])
def test_variants_train_on_resnet(variant, data, rgb, tmp_path):
    source = rgb if data == "rgb" else "digits"
    model = vaekit.train(source, out=tmp_path / "r", model=variant, epochs=1, batch_size=256, sets=SPEED.get(variant, []),
                         **SMALL)
    shape = (3, 16, 16) if data == "rgb" else (1, 8, 8)
    assert tuple(model.data_shape) == shape
    assert vaekit.open_run(tmp_path / "r").config.model.network.name == "resnet"
    assert model.sample(2).shape == (2, *shape) and bool(torch.isfinite(model.sample(2)).all())


def test_exact_resume_of_a_resnet_run(rgb, tmp_path):
    common = dict(model="vae", batch_size=32, seed=3, attention=True, **SMALL)
    vaekit.train(rgb, out=tmp_path / "resumed", epochs=2, **common)
    vaekit.train(out=tmp_path / "resumed", resume=True, epochs=3, progress=False)
    vaekit.train(rgb, out=tmp_path / "straight", epochs=3, **common)
    a = load_file(str(tmp_path / "resumed" / rundir.WEIGHTS))
    b = load_file(str(tmp_path / "straight" / rundir.WEIGHTS))
    assert set(a) == set(b) and any("attentions" in k for k in a)
    assert not [k for k in a if not torch.equal(a[k], b[k])]


def test_one_channel_per_group_hides_each_images_channel_means():
    """GroupNorm with one channel per group (32 groups on 32 channels) is instance norm: the decoder's last
    norm removes each image's mean of every channel, so its output cannot follow them (a mean colour)."""
    _, dec = pair((3, 8, 8), widths=[8, 16], norm_groups=32)  # diffusers' layout at small widths: kept
    h = torch.randn(2, 8, 8, 8)
    torch.testing.assert_close(dec.head(h), dec.head(h + torch.randn(2, 8, 1, 1)), atol=1e-4, rtol=0)


@pytest.mark.parametrize("recipe", ["resnet", "celeba64"])
def test_vector_recipes_keep_each_images_channel_means(recipe):
    """The vector-latent recipes group at least 4 channels per norm (Wu & He 2018, sec. 4.1, Table 3: groups of a
    single channel did worst), so the decoder's output follows its last maps' per-image channel means."""
    from vaekit.app.options import base_config

    args = base_config(recipe).model.network.args
    torch.manual_seed(0)
    dec = ResNetDecoder(4, (3, 16, 16), widths=args["widths"], blocks=1, dense=8,
                        norm_groups=args.get("norm_groups", 32))
    h = torch.randn(2, args["widths"][0], 16, 16)
    assert (dec.head(h) - dec.head(h + torch.randn(2, args["widths"][0], 1, 1))).abs().mean() > 1e-2
    norms = [m for m in dec.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert min(m.num_channels // m.num_groups for m in norms) >= 4
