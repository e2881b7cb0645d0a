"""The explorer's page and latent map, and the plain API page (numpy only; no CDN: everything inlined)."""
from __future__ import annotations

import functools
import html
from importlib import resources
from typing import Optional

import numpy as np

ENCODE_ROWS = 256  # rows per encode call while the map is made


@functools.lru_cache(maxsize=1)
def page() -> str:
    """The explorer (explorer.html): one file, its script and styles inlined."""
    return resources.files(__package__).joinpath("explorer.html").read_text(encoding="utf-8")


def latent_map(backend, x: np.ndarray, labels: Optional[np.ndarray], limit: int = 1000, seed: int = 0) -> dict:
    """The codes (posterior means) of at most ``limit`` examples of ``x`` (data units), their labels, and the
    plane the explorer shows: the two latent values of a 2-D latent, else the first two principal axes of
    the codes (the leading right singular vectors of the centred codes; Jolliffe, Principal Component
    Analysis, 2nd ed. 2002, sec. 3.5)."""
    pick = np.sort(np.random.default_rng(seed).permutation(len(x))[:limit])
    x, labels = x[pick], (None if labels is None else labels[pick])
    codes = np.concatenate([backend.encode(x[i:i + ENCODE_ROWS],
                                           None if labels is None else labels[i:i + ENCODE_ROWS])[0]
                            for i in range(0, len(x), ENCODE_ROWS)]).astype(np.float64)
    dim = codes.shape[1]
    if dim <= 2:
        origin, axes = np.zeros(dim), np.eye(2, dim)
        names = ["z0", "z1"][:dim]
    else:
        origin = codes.mean(0)
        axes = np.linalg.svd(codes - origin, full_matrices=False)[2][:2]
        names = ["PC1", "PC2"]
    return {"codes": np.round(codes, 4).tolist(), "labels": None if labels is None else labels.tolist(),
            "origin": origin.tolist(), "axes": axes.tolist(), "axis_names": names}


def docs_page(spec: dict) -> str:
    """The OpenAPI description as a plain page: each path, what it does, its request body's fields."""
    schemas = spec.get("components", {}).get("schemas", {})
    rows = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            fields = schemas.get(body.get("$ref", "").rsplit("/", 1)[-1], {}).get("properties", {})
            listed = "".join(f"<li><code>{html.escape(name)}</code>: {html.escape(field.get('description', ''))}</li>"
                             for name, field in fields.items())
            rows.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2><p>{html.escape(op.get('summary', ''))}"
                        f"</p>{'<ul>' + listed + '</ul>' if listed else ''}")
    info = spec.get("info", {})
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(info.get('title', ''))} API</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:20px;max-width:760px}h2{font-size:15px}</style></head>"
            f"<body><h1>{html.escape(info.get('title', ''))} API</h1><p>{html.escape(info.get('description', ''))}</p>"
            f"<p>The machine-readable schema: <a href='/openapi.json'>/openapi.json</a>.</p>{''.join(rows)}</body></html>")
