"""Downloads of mnist / fashion-mnist against a local HTTP server serving synthetic IDX files."""
from __future__ import annotations

import hashlib
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from vaekit.data import load_data
from vaekit.data import builtin, download
from vaekit.data.download import CHECKSUMS, IDX_GZ_FILES, download_dataset, mirror_urls
from vaekit.data.idx import write_idx
from vaekit.errors import VaekitError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    monkeypatch.delenv("VAEKIT_MNIST_MIRRORS", raising=False)
    monkeypatch.delenv("VAEKIT_FASHION_MNIST_MIRRORS", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(builtin, "SYSTEM_DATA_DIRS", [tmp_path / "system"])


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www; ``requests`` logs (path, status). /short/* sends a truncated body."""
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            if self.path.startswith("/short/"):
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b" + b"\0" * 8)
                return
            super().do_GET()

        def log_request(self, code="-", size="-"):
            requests.append((self.path, int(code)))

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}/", root=root, requests=requests)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def publish(folder, n_train=40, n_test=10):
    """Write synthetic IDX .gz files into ``folder``; return (arrays, md5 table)."""
    g = np.random.default_rng(0)
    arrays = dict(zip(IDX_GZ_FILES, (
        g.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), (np.arange(n_train) % 10).astype(np.uint8),
        g.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), (np.arange(n_test) % 10).astype(np.uint8),
    )))
    folder.mkdir(parents=True, exist_ok=True)
    for filename, arr in arrays.items():
        write_idx(folder / filename, arr, compress=True)
    md5 = {f: hashlib.md5((folder / f).read_bytes()).hexdigest() for f in IDX_GZ_FILES}
    return arrays, md5


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cache(tmp_path, name="mnist"):
    return tmp_path / "xdg" / "vaekit" / name


def test_official_checksums_and_mirrors():
    # torchvision/datasets/mnist.py (MNIST.resources, FashionMNIST.resources)
    assert CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert CHECKSUMS["mnist"]["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    assert CHECKSUMS["fashion-mnist"]["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert CHECKSUMS["fashion-mnist"]["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"
    for table in CHECKSUMS.values():
        assert sorted(table) == sorted(IDX_GZ_FILES) and all(len(v) == 32 for v in table.values())
    assert mirror_urls("mnist")[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


def test_mirror_urls_from_env_and_argument(monkeypatch):
    monkeypatch.setenv("VAEKIT_FASHION_MNIST_MIRRORS", " http://a/x , http://b/ ,")
    assert mirror_urls("fashion-mnist") == ["http://a/x/", "http://b/"]
    assert mirror_urls("fashion-mnist", ["http://c"]) == ["http://c/"]  # argument beats env
    assert mirror_urls("mnist", "http://d,http://e/") == ["http://d/", "http://e/"]


def test_download_verifies_caches_and_loads(tmp_path, server, monkeypatch):
    arrays, md5 = publish(server.root / "m")
    monkeypatch.setitem(CHECKSUMS, "mnist", md5)
    monkeypatch.setenv("VAEKIT_MNIST_MIRRORS", server.url + "m/")
    s = load_data("mnist")
    assert sorted(server.requests) == sorted((f"/m/{f}", 200) for f in IDX_GZ_FILES)
    assert sorted(p.name for p in cache(tmp_path).iterdir()) == sorted(IDX_GZ_FILES)  # no .part left
    for f in IDX_GZ_FILES:
        assert (cache(tmp_path) / f).read_bytes() == (server.root / "m" / f).read_bytes()
    assert (len(s.train), len(s.val), len(s.test)) == (36, 4, 10)
    np.testing.assert_allclose(s.test.x.numpy(), arrays["t10k-images-idx3-ubyte.gz"][:, None] / 255.0, atol=1e-7)
    assert s.info.extra["path"] == str(cache(tmp_path))
    # downloaded once: a second load reads the cache and does not touch the server
    again = load_data("mnist")
    assert len(server.requests) == 4
    assert np.array_equal(again.test.x.numpy(), s.test.x.numpy())


def test_checksum_mismatch_leaves_nothing(tmp_path, server):
    _, md5 = publish(server.root / "m")
    wrong = dict(md5, **{"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(VaekitError) as err:
        download_dataset("mnist", cache(tmp_path), mirrors=server.url + "m/", checksums=wrong)
    assert "MD5 checksum mismatch" in str(err.value.failures[0]) and "0" * 32 in err.value.failures[0]
    assert list(cache(tmp_path).iterdir()) == []


def test_official_checksums_reject_other_files(tmp_path, server, monkeypatch):
    publish(server.root / "m")
    monkeypatch.setenv("VAEKIT_MNIST_MIRRORS", server.url + "m/")
    with pytest.raises(VaekitError) as err:
        load_data("mnist")  # synthetic files do not match the official MD5s
    assert "MD5 checksum mismatch" in str(err.value) and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in str(err.value)
    assert list(cache(tmp_path).iterdir()) == []


def test_partial_download_resumes_missing_files_only(tmp_path, server):
    _, md5 = publish(server.root / "m")
    wrong = dict(md5, **{"t10k-images-idx3-ubyte.gz": "f" * 32})
    with pytest.raises(VaekitError):
        download_dataset("mnist", cache(tmp_path), mirrors=server.url + "m/", checksums=wrong)
    assert sorted(p.name for p in cache(tmp_path).iterdir()) == sorted(IDX_GZ_FILES[:2])  # verified files kept
    server.requests.clear()
    download_dataset("mnist", cache(tmp_path), mirrors=server.url + "m/", checksums=md5)
    assert server.requests == [(f"/m/{f}", 200) for f in IDX_GZ_FILES[2:]]


def test_first_mirror_fails_then_second_succeeds(tmp_path, server, monkeypatch):
    arrays, md5 = publish(server.root / "good")
    monkeypatch.setitem(CHECKSUMS, "fashion-mnist", md5)
    s = load_data("fashion-mnist", mirrors=[server.url + "missing/", server.url + "good/"])
    for f in IDX_GZ_FILES:
        i = server.requests.index((f"/missing/{f}", 404))
        assert server.requests[i + 1] == (f"/good/{f}", 200)
    assert s.info.class_names[9] == "Ankle boot" and s.test.y.tolist() == list(range(10))


def test_truncated_response_is_discarded(tmp_path, server):
    _, md5 = publish(server.root / "good")
    download_dataset("mnist", cache(tmp_path), mirrors=[server.url + "short/", server.url + "good/"], checksums=md5)
    assert ("/short/train-images-idx3-ubyte.gz", 200) in server.requests
    assert sorted(p.name for p in cache(tmp_path).iterdir()) == sorted(IDX_GZ_FILES)
    for f in IDX_GZ_FILES:
        assert hashlib.md5((cache(tmp_path) / f).read_bytes()).hexdigest() == md5[f]


def test_no_server_reachable(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_FASHION_MNIST_MIRRORS", closed_port_url())
    with pytest.raises(VaekitError) as err:
        load_data("fashion-mnist", data_dir=tmp_path)
    msg = str(err.value)
    for text in ("dataset 'fashion-mnist' was not found and downloading it failed", "train-images-idx3-ubyte.gz",
                 str(tmp_path / "fashion-mnist"), str(cache(tmp_path, "fashion-mnist")), "--data-dir",
                 "VAEKIT_DATA_DIR", "apt-get install dataset-fashion-mnist"):
        assert text in msg
    assert list(cache(tmp_path, "fashion-mnist").iterdir()) == []


def test_download_false_never_connects(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(download.urllib.request, "urlopen", boom)
    with pytest.raises(VaekitError, match="download is off"):
        load_data("mnist", download=False)
