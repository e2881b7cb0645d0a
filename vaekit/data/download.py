"""Download MNIST-style IDX files once, checksum-verified, into a cache directory.

Each file is streamed to a temp file next to its destination and renamed into place only
after its MD5 matches, so the cache never holds a partial or wrong file. Mirrors are tried
in order; tests point them at a local server via ``VAEKIT_<NAME>_MIRRORS`` or ``mirrors=``.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

from ..errors import VaekitError
from ..paths import inside

log = logging.getLogger(__name__)

IDX_GZ_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
MIRRORS_ENV = {"mnist": "VAEKIT_MNIST_MIRRORS", "fashion-mnist": "VAEKIT_FASHION_MNIST_MIRRORS"}

# MD5 of the official .gz files, as listed in torchvision/datasets/mnist.py
# (MNIST.resources and FashionMNIST.resources). Debian's re-gzipped copies differ; local
# files are never checked against these, only downloads are.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}


class DownloadError(VaekitError):
    """A dataset could not be downloaded; ``failures`` lists 'url: reason' per attempt."""

    def __init__(self, message: str, failures: Sequence[str]):
        super().__init__(message)
        self.failures = list(failures)


def mirror_urls(name: str, mirrors: Union[str, Sequence[str], None] = None) -> list:
    """Base URLs to try for ``name``: ``mirrors``, else ``$VAEKIT_<NAME>_MIRRORS``, else the official ones."""
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV[name], "")
        mirrors = env.split(",") if env.strip() else MIRRORS[name]
    elif isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    urls = [m.strip() for m in mirrors if m.strip()]
    return [u if u.endswith("/") else u + "/" for u in urls]


def download_dataset(
    name: str,
    dest: Path,
    *,
    mirrors: Union[str, Sequence[str], None] = None,
    checksums: Optional[Mapping[str, str]] = None,
    timeout: float = 60.0,
) -> Path:
    """Download the IDX .gz files of ``name`` missing from ``dest`` and return ``dest``.

    ``checksums`` maps file name -> MD5 (default: the official :data:`CHECKSUMS`).
    Raises :class:`DownloadError` naming every URL tried and why it failed.
    """
    checksums = CHECKSUMS[name] if checksums is None else checksums
    urls = mirror_urls(name, mirrors)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create cache directory '{dest}': {e.strerror or e}", []) from None
    for filename in IDX_GZ_FILES:
        target = inside(dest, filename)
        if target.exists():
            continue
        failures = []
        for base in urls:
            url = base + filename
            try:
                _fetch_verified(url, target, checksums[filename], timeout)
                break
            except _Failure as e:
                log.info("download of %s failed: %s", url, e)
                failures.append(f"{url}: {e}")
        else:
            raise DownloadError(f"could not download {filename} for dataset '{name}'", failures)
    return dest


class _Failure(Exception):
    """One attempt failed; the message says why."""


def _fetch_verified(url: str, target: Path, md5: str, timeout: float) -> None:
    """Stream ``url`` to a temp file beside ``target``; rename it into place if its MD5 matches."""
    log.info("downloading %s", url)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != md5.lower():
            raise _Failure(f"MD5 checksum mismatch (got {got}, expected {md5}); the file was discarded")
        os.replace(tmp, target)
        tmp = None
    except urllib.error.HTTPError as e:
        e.close()
        raise _Failure(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _Failure(str(e.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise _Failure(f"{type(e).__name__}: {e}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
