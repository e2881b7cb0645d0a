"""The benchmark helpers' arithmetic and pythae's conv net rebuilt for vaekit (no pythae, no Fashion-MNIST)."""
import argparse
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_common import command_line, throughput  # noqa: E402
from flops import forward_flops, layer_inputs  # noqa: E402
from pythae_conv_net import PYTHAE_PARAMETERS_AT_LATENT_16, PythaeConvDecoder, PythaeConvEncoder  # noqa: E402
from scaling import rows_from  # noqa: E402


def test_pythae_conv_net_has_pythae_shapes_and_parameter_count():
    encoder, decoder = PythaeConvEncoder(), PythaeConvDecoder(16)
    x = torch.rand(2, 1, 28, 28)
    assert encoder(x).shape == (2, 1024)
    assert decoder(torch.randn(2, 16)).shape == (2, 1, 28, 28)
    head = nn.Linear(1024, 2 * 16)  # vaekit's Gaussian posterior head on the (B, 1024) features
    count = sum(p.numel() for m in (encoder, decoder, head) for p in m.parameters())
    assert count == PYTHAE_PARAMETERS_AT_LATENT_16 == 17_232_033


def test_channels_last_net_computes_the_same_function():
    torch.manual_seed(0)
    plain, fast = PythaeConvEncoder().eval(), PythaeConvEncoder(channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    dec, dec_fast = PythaeConvDecoder(4).eval(), PythaeConvDecoder(4, channels_last=True).eval()
    dec_fast.load_state_dict(dec.state_dict())
    x, z = torch.rand(3, 1, 28, 28), torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
        out = dec_fast(z)
        assert out.is_contiguous()
        torch.testing.assert_close(out, dec(z), rtol=1e-4, atol=1e-5)


def test_forward_flops_counts_two_per_multiply_add():
    linear, conv = nn.Linear(10, 20), nn.Conv2d(3, 8, 3, padding=1)
    assert forward_flops(lambda: linear(torch.randn(4, 10))) == 2 * 4 * 10 * 20
    # every output pixel (5 x 5) of every channel (8) sums 3 * 3 * 3 products, for each of 2 images
    assert forward_flops(lambda: conv(torch.randn(2, 3, 5, 5))) == 2 * 2 * 8 * 25 * 27
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 2))
    seen = layer_inputs(net, lambda: net(torch.randn(5, 3, 4)))
    assert [tuple(shape) for _, shape in seen] == [(5, 12), (5, 6)]


def test_throughput_skips_the_warmup_epoch_and_scaling_ratios_are_to_the_smallest_size():
    assert throughput({"epoch_seconds": [9.0, 2.0, 4.0, 3.0]}, 600) == pytest.approx(200.0)
    assert throughput({"epoch_seconds": [5.0]}, 600) == pytest.approx(120.0)
    runs = {"1000": [{"epoch_seconds": [9.0, 1.0]}, {"epoch_seconds": [9.0, 1.2]}],
            "3000": [{"epoch_seconds": [9.0, 4.4]}]}
    rows = rows_from(runs, [1000, 3000])
    assert rows[0]["seconds_per_epoch"] == pytest.approx(1.1)
    assert rows[1]["seconds_per_1k"] == pytest.approx(4.4 / 3)
    assert [r["ratio_to_linear"] for r in rows] == pytest.approx([1.0, 4 / 3])


def test_command_line_spells_out_every_option():
    args = argparse.Namespace(pythae_python="/x/python", parts="conv", sizes=[1, 2], flag=True, off=False, none=None)
    assert command_line("s.py", args) == ("python benchmarks/s.py --pythae-python PYTHAE_PYTHON --parts conv "
                                          "--sizes 1 2 --flag --no-off")


def test_evaluation_bounds_count_the_products_and_the_softplus():
    from vs_pythae import evaluation_bound

    # encoding: both heads, 2 x (784 x 512 + 512 x 32) FLOP per image, no softplus
    assert evaluation_bound("encode", 784, 512, 16, 1000, 172.0) == pytest.approx(172e9 / 835_584)
    nll_products_only = 172e9 / (2 * (784 * 512 + 512 * 32 + 1000 * (16 * 512 + 512 * 784)))
    nll = evaluation_bound("nll", 784, 512, 16, 1000, 172.0)
    assert 0.05 * nll_products_only < nll < nll_products_only  # the softplus of 784,000 logits costs time
