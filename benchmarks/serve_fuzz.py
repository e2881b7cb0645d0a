"""Requests made from the server's OpenAPI schema (hypothesis), counted by status: none may be a 5xx.

    python benchmarks/serve_fuzz.py --examples 2000 [--run RUN]

Each example is one POST to one endpoint: a body drawn from that endpoint's request schema (most
often), the same with one field replaced by any JSON value, any JSON value, or raw bytes. Without
--run a tiny MLP VAE is trained on digits first (about 10 s). tests/test_serve.py runs 60 examples.
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import strategies as st

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
PNG_LIKE = st.binary(max_size=64).map(lambda b: base64.b64encode(b"\x89PNG\r\n\x1a\n" + b).decode())


def value(schema: dict, spec: dict) -> st.SearchStrategy:
    """Values that satisfy ``schema`` (an OpenAPI 3.1 JSON schema), kept small."""
    if "$ref" in schema:
        return value(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]], spec)
    if "anyOf" in schema:
        return st.one_of([value(each, spec) for each in schema["anyOf"]])
    if "enum" in schema or "const" in schema:
        return st.sampled_from(schema.get("enum", [schema.get("const")]))
    kind = schema.get("type")
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2 ** 40) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2 ** 40 + 1) - 1)
        return st.integers(low, high)
    if kind == "number":
        return st.floats(-4, 4) | st.floats()
    if kind == "string":
        return st.text(max_size=16) | PNG_LIKE
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(value(schema.get("items", {}), spec), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object" or "properties" in schema:
        properties, required = schema.get("properties", {}), set(schema.get("required", ()))
        return st.fixed_dictionaries({k: value(v, spec) for k, v in properties.items() if k in required},
                                     optional={k: value(v, spec) for k, v in properties.items() if k not in required})
    return JSON


def requests_from_schema(spec: dict) -> st.SearchStrategy:
    """(method, path, body bytes) for each POST endpoint of ``spec``: valid bodies, broken fields, junk."""
    endpoints = []
    for path, methods in sorted(spec["paths"].items()):
        body = methods.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            endpoints.append((path, value(body["schema"], spec)))

    @st.composite
    def request(draw):
        path, valid = draw(st.sampled_from(endpoints))
        kind = draw(st.sampled_from(["valid", "valid", "valid", "broken field", "any JSON", "bytes"]))
        if kind == "bytes":
            return "POST", path, draw(st.binary(max_size=64))
        body = draw(JSON) if kind == "any JSON" else draw(valid)
        if kind == "broken field" and isinstance(body, dict) and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(JSON)
        return "POST", path, json.dumps(body).encode()  # NaN and Infinity stay (Python's JSON writes them)
    return request()


def main() -> None:
    from hypothesis import HealthCheck, given, settings

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_serve import Client  # noqa: E402  (one keep-alive connection)

    from vaekit.serve.server import ServerThread, torch_app

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--run", help="A run directory (default: train a tiny MLP VAE on digits).")
    args = parser.parse_args()
    run = args.run
    if run is None:
        import vaekit

        run = str(Path(tempfile.mkdtemp()) / "mlp")
        vaekit.train("digits", recipe="mlp", epochs=1, hidden=[32], latent_dim=4, out=run, progress=False)
    counts, start = collections.Counter(), time.perf_counter()
    with ServerThread(torch_app(run, map_points=50)) as url:
        client = Client(url)
        spec = client.call("GET", "/openapi.json")[1]

        @settings(max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(requests_from_schema(spec))
        def send(request):
            method, path, raw = request
            status, out = client.call(method, path, raw=raw)
            counts[(path, status)] += 1
            if status >= 500:
                print(f"5xx: {path} {raw[:200]!r} -> {out}")
        send()
    total = sum(counts.values())
    fives = sum(n for (_, status), n in counts.items() if status >= 500)
    print(f"{total} requests in {time.perf_counter() - start:.1f}s, {fives} answered 5xx")
    for (path, status), n in sorted(counts.items()):
        print(f"  {path} {status}: {n}")


if __name__ == "__main__":
    main()
