"""``vaekit serve``: the JSON API of a tiny trained run over real HTTP, hostile requests, and requests
generated from the OpenAPI schema (benchmarks/serve_fuzz.py runs many more)."""
from __future__ import annotations

import base64
import http.client
import io
import json
import struct
import sys
import urllib.parse
import zlib
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

# found, not imported: importing fastapi at collection would cost every worker, not only the one running this file
pytestmark = pytest.mark.skipif(not (find_spec("fastapi") and find_spec("uvicorn")),
                                reason="the serve extra is not installed: pip install vaekit[serve]")

TOKEN = "s3cret-token-for-tests"


class Client:
    """One keep-alive HTTP connection; ``call`` gives (status, parsed JSON or text)."""

    def __init__(self, url: str, token: str | None = None):
        self.address = urllib.parse.urlsplit(url).netloc
        self.token = token
        self.connection = http.client.HTTPConnection(self.address, timeout=30)

    def call(self, method: str, path: str, body=None, raw: bytes | None = None, headers=None):
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        kind = response.getheader("content-type", "")
        return response.status, (json.loads(text) if kind.startswith("application/json") else text)


@pytest.fixture(scope="module")
def served(zoo_run):
    """The vae of zoo_run (MLP, latent 4, 8x8 digits) served with micro-batching, and once more behind a token."""
    from vaekit.serve.server import ServerThread, torch_app

    with ServerThread(torch_app(zoo_run("vae"), map_points=200)) as url, \
            ServerThread(torch_app(zoo_run("vae"), token=TOKEN, map_points=10)) as guarded:
        yield url, guarded


@pytest.fixture(scope="module")
def client(served):
    return Client(served[0])


def png(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decoded(b64: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_every_endpoint_answers_with_data_of_the_models_shapes(client):
    status, info = client.call("GET", "/info")
    assert status == 200 and info["latent_dim"] == 4 and info["data_shape"] == [1, 8, 8]
    status, out = client.call("POST", "/decode", {"z": [[0, 0, 0, 0], [1, -1, 0.5, 2]]})
    assert status == 200 and [decoded(b).shape for b in out["images"]] == [(8, 8), (8, 8)]
    status, arrays = client.call("POST", "/decode", {"z": [[1, -1, 0.5, 2]], "format": "array"})
    x = np.array(arrays["x"])
    assert x.shape == (1, 1, 8, 8) and 0 <= x.min() <= x.max() <= 1
    assert np.abs(decoded(out["images"][1]) / 255 - x[0, 0]).max() <= 1 / 255  # the PNG is the array, rounded
    image = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    status, moments = client.call("POST", "/encode", {"images": [png(image)]})
    assert status == 200 and np.array(moments["mean"]).shape == (1, 4) and min(moments["var"][0]) > 0
    status, same = client.call("POST", "/encode", {"x": [(image / 255.0)[None].tolist()]})
    assert np.allclose(same["mean"], moments["mean"], atol=1e-5)  # a PNG and its array encode alike
    status, recon = client.call("POST", "/reconstruct", {"images": [png(image)] * 3, "format": "array"})
    assert status == 200 and np.array(recon["x"]).shape == (3, 1, 8, 8)
    first, again = (client.call("POST", "/sample", {"n": 5, "seed": 7})[1] for _ in range(2))
    assert len(first["images"]) == 5 and first == again  # seeded draws repeat
    status, points = client.call("GET", "/points")
    assert status == 200 and len(points["codes"]) == 200 and np.array(points["axes"]).shape == (2, 4)
    status, page = client.call("GET", "/")
    assert status == 200 and "<canvas" in page and "http" not in page.split("<script>")[1]  # no CDN
    assert client.call("GET", "/docs")[0] == 200 and "/decode" in client.call("GET", "/openapi.json")[1]["paths"]


def test_images_are_written_as_pngs_that_pillow_reads_back():
    """codec.encode_png: greyscale and RGB, values clipped to [0, 1] and rounded to 8 bits."""
    from vaekit.serve.codec import encode_png

    for shape in [(1, 5, 7), (3, 5, 7)]:
        x = np.random.default_rng(0).uniform(-0.2, 1.2, shape).astype(np.float32)
        expected = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
        assert np.array_equal(decoded(encode_png(x)), expected[0] if shape[0] == 1 else expected.transpose(1, 2, 0))


def test_the_explorer_map_lies_on_the_principal_plane(client):
    """latent_map: orthonormal axes along which the centred codes vary most (Jolliffe 2002, sec. 3.5)."""
    points = client.call("GET", "/points")[1]
    codes, axes, origin = np.array(points["codes"]), np.array(points["axes"]), np.array(points["origin"])
    assert np.allclose(axes @ axes.T, np.eye(2), atol=1e-6) and np.allclose(origin, codes.mean(0), atol=1e-3)
    spread = np.var((codes - origin) @ axes.T, axis=0).sum()
    for _ in range(20):  # no other orthonormal pair keeps more of the variance
        other = np.linalg.qr(np.random.default_rng(_).normal(size=(4, 2)))[0].T
        assert np.var((codes - origin) @ other.T, axis=0).sum() <= spread + 1e-6


def bomb() -> str:
    """A PNG that declares 100000 x 100000 pixels in a few bytes (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 100000, 100000, 1, 0, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


HOSTILE = {
    "huge n": ("/sample", {"n": 10 ** 12}, 422),
    "negative n": ("/sample", {"n": -1}, 422),
    "NaN codes": ("/decode", b'{"z": [[NaN, 0, 0, 0]]}', 422),
    "infinite codes": ("/decode", b'{"z": [[1e400, 0, 0, 0]]}', 422),
    "wrong latent size": ("/decode", {"z": [[0, 0, 0]]}, 422),
    "ragged codes": ("/decode", {"z": [[0, 0, 0, 0], [0]]}, 422),
    "no codes": ("/decode", {"z": []}, 422),
    "too many codes": ("/decode", {"z": [[0, 0, 0, 0]] * 257}, 422),
    "strings for codes": ("/decode", {"z": [["a", 0, 0, 0]]}, 422),
    "a label for an unconditional model": ("/decode", {"z": [[0, 0, 0, 0]], "label": 3}, 422),
    "an unknown format": ("/decode", {"z": [[0, 0, 0, 0]], "format": "jpeg"}, 422),
    "a decompression bomb": ("/encode", {"images": [bomb()]}, 413),
    "not base64": ("/encode", {"images": ["%%%not base64%%%"]}, 422),
    "not a PNG": ("/encode", {"images": [base64.b64encode(b"GIF89a" + b"\0" * 40).decode()]}, 422),
    "a truncated PNG": ("/encode", {"images": [png(np.zeros((8, 8)))[:40]]}, 422),
    "a PNG of the wrong size": ("/encode", {"images": [png(np.zeros((9, 8)))]}, 422),
    "images and arrays": ("/encode", {"images": [png(np.zeros((8, 8)))], "x": [[[0] * 8] * 8]}, 422),
    "neither images nor arrays": ("/reconstruct", {}, 422),
    "pixels out of range": ("/encode", {"x": [[[[2.0] * 8] * 8]]}, 422),
    "non-UTF-8 JSON": ("/decode", b'\xff\xfe{"z": [[0, 0, 0, 0]]}\xc3\x28', 400),
    "truncated JSON": ("/decode", b'{"z": [[0.1, 0.2', 422),
    "a JSON list": ("/decode", b"[1, 2]", 422),
    "a body over the limit": ("/decode", b'{"z": [[' + b"0," * (3 << 20) + b"0]]}", 413),
    "a file path": ("/decode", {"z": [[0, 0, 0, 0]], "path": "/etc/passwd", "format": "../../x"}, 422),
    "no body": ("/decode", b"", 422),
    "JSON sent as text": ("/decode", b'{"z": [[0, 0, 0, 0]]}', 422, {"Content-Type": "text/plain"}),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_requests_get_a_4xx_with_a_one_line_reason(client, case):
    path, body, expected, *headers = HOSTILE[case]
    status, out = client.call("POST", path, **({"raw": body} if isinstance(body, bytes) else {"body": body}),
                              headers=headers[0] if headers else None)
    assert status == expected, (status, out)
    assert isinstance(out["detail"], str) and "\n" not in out["detail"] and "Traceback" not in out["detail"]


def test_a_token_is_asked_of_every_request_but_the_page_shell(served):
    url = served[1]
    assert Client(url).call("GET", "/info") == (401, {"detail": "missing or wrong token: send 'Authorization: "
                                                                "Bearer TOKEN'"})
    assert Client(url, token="wrong-token-123").call("POST", "/decode", {"z": [[0, 0, 0, 0]]})[0] == 401
    assert Client(url).call("GET", "/openapi.json")[0] == 401
    assert Client(url, token=TOKEN).call("POST", "/decode", {"z": [[0, 0, 0, 0]]})[0] == 200
    assert Client(url).call("GET", "/")[0] == 200  # the page holds no data: it asks for the token


def test_no_request_field_names_a_file(client):
    schemas = client.call("GET", "/openapi.json")[1]["components"]["schemas"]
    fields = {name for schema in schemas.values() for name in schema.get("properties", {})}
    assert not fields & {"path", "file", "filename", "dir", "run", "out", "url"}, fields


def test_requests_made_from_the_openapi_schema_never_get_a_5xx(client):
    """Bodies drawn from each POST endpoint's schema, and others that break it (benchmarks/serve_fuzz.py)."""
    from hypothesis import HealthCheck, given, settings

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from serve_fuzz import requests_from_schema

    spec, seen = client.call("GET", "/openapi.json")[1], []

    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(requests_from_schema(spec))
    def check(request):
        method, path, raw = request
        status, out = client.call(method, path, raw=raw)
        seen.append(status)
        assert status < 500, (path, raw[:200], out)

    check()
    assert len(seen) == 30 and any(s == 200 for s in seen) and any(400 <= s < 500 for s in seen)


def test_a_conditional_model_is_served_with_its_labels(zoo_run):
    from vaekit.serve.server import ServerThread, torch_app

    with ServerThread(torch_app(zoo_run("cvae"), map_points=50)) as url:
        client = Client(url)
        assert client.call("GET", "/info")[1]["num_classes"] == 10
        threes = client.call("POST", "/sample", {"n": 2, "label": 3, "seed": 0})
        assert threes[0] == 200 and len(threes[1]["images"]) == 2
        status, out = client.call("POST", "/decode", {"z": [[0, 0, 0, 0]] * 2, "label": [1, 2]})
        assert status == 200 and len(out["images"]) == 2
        assert "conditional" in client.call("POST", "/decode", {"z": [[0, 0, 0, 0]]})[1]["detail"]
        assert client.call("POST", "/sample", {"n": 1, "label": 10})[0] == 422
        assert len(client.call("GET", "/points")[1]["labels"]) == 50


def test_the_command_binds_the_loopback_unless_told_and_says_what_is_wrong(zoo_run, capsys, monkeypatch):
    from conftest import run_cli

    from vaekit.serve.server import exposure_warning

    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("::1", None) is None
    assert "no --token" in exposure_warning("0.0.0.0", None) and "no --token" not in exposure_warning("0.0.0.0", "t")
    code, _, err = run_cli(["serve", zoo_run("vae"), "--token", "short"], capsys)
    assert code == 2 and "--token must have at least 8 characters" in err
    code, _, err = run_cli(["serve", zoo_run("vae"), "--port", "70000"], capsys)
    assert code == 2 and "--port must lie in 0..65535" in err
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # as where the extra is not installed
    code, _, err = run_cli(["serve", zoo_run("vae")], capsys)
    assert code == 2 and "pip install vaekit[serve]" in err and "Traceback" not in err


def test_an_onnx_export_is_served_without_torch_and_answers_as_the_model(zoo_run, client, tmp_path):
    """``vaekit serve --onnx DIR``: onnxruntime answers /decode, /encode and /reconstruct as the PyTorch model
    does, in a process that never imports torch."""
    pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install vaekit[export]")
    import subprocess

    from vaekit.export.writers import export_run

    export_run(zoo_run("vae"), "onnx", tmp_path / "onnx")
    z = [[0, 0, 0, 0], [1, -1, 0.5, 2]]
    image = (np.arange(64).reshape(1, 8, 8) / 64.0).tolist()
    code = f"""
import json, sys, urllib.request
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_serve import Client
from vaekit.serve.server import ServerThread, onnx_app
with ServerThread(onnx_app({str(tmp_path / "onnx")!r}, threads=1)) as url:
    c = Client(url)
    out = [c.call("POST", "/decode", {{"z": {z}, "format": "array"}})[1]["x"],
           c.call("POST", "/encode", {{"x": [{image}]}})[1]["mean"],
           c.call("POST", "/reconstruct", {{"x": [{image}], "format": "array"}})[1]["x"],
           c.call("POST", "/decode", {{"z": [[0, 0, 0]]}})[0], c.call("GET", "/info")[1]["backend"]]
print(json.dumps([out, "torch" in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (decoded_x, mean, recon, bad, backend), torch_loaded = json.loads(done.stdout)
    assert not torch_loaded and backend == "onnx" and bad == 422
    assert np.abs(np.array(decoded_x) - np.array(client.call("POST", "/decode", {"z": z, "format": "array"})[1]["x"])
                  ).max() < 1e-4
    assert np.abs(np.array(mean) - np.array(client.call("POST", "/encode", {"x": [image]})[1]["mean"])).max() < 1e-4
    assert np.abs(np.array(recon) - np.array(client.call("POST", "/reconstruct", {"x": [image], "format": "array"}
                                                         )[1]["x"])).max() < 1e-4
