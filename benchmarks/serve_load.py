"""Load test of ``vaekit serve``: N concurrent clients for T seconds against /decode and /encode on
127.0.0.1, with micro-batching on (taking what queued, or waiting 2 ms for more) and off, against one request at a time.

    python benchmarks/serve_load.py --clients 16 --seconds 10 [--run RUN]

The server is `vaekit serve` in its own process; the load generator is one asyncio process with
keep-alive connections, on the same cores. Each row: requests per second, p50/p99 latency, errors
(any status but 200), the server's RSS before and after, and the rows per forward pass.
Without --run a small MLP VAE (the mlp recipe, 1 epoch) is trained on digits first.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

MAX_CLIENTS, MAX_SECONDS = 64, 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def start_server(run: str, batching: bool, wait_ms: float) -> tuple:
    port = free_port()
    command = [sys.executable, "-m", "vaekit", "serve", run, "--port", str(port),
               "--batching" if batching else "--no-batching", "--batch-wait", str(wait_ms)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            get(port, "/info")
            return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)


async def client(port: int, request: bytes, until: float, latencies: list, errors: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n")[0].decode())
    finally:
        writer.close()


def load(port: int, path: str, body: dict, clients: int, seconds: float) -> dict:
    payload = json.dumps(body).encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    latencies, errors = [], []

    async def run():
        until = time.perf_counter() + seconds
        await asyncio.gather(*(client(port, request, until, latencies, errors) for _ in range(clients)))
    asyncio.run(run())
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "per_s": len(ms) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": len(errors)}


def png_of(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((image * 255).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--run", help="A run directory (default: train the mlp recipe on digits for 1 epoch).")
    args = parser.parse_args()
    if not (1 <= args.clients <= MAX_CLIENTS and 0 < args.seconds <= MAX_SECONDS):
        parser.error(f"--clients must lie in 1..{MAX_CLIENTS} and --seconds in (0, {MAX_SECONDS}]")
    run = args.run
    if run is None:
        import vaekit

        run = str(Path(tempfile.mkdtemp()) / "mlp")
        vaekit.train("digits", recipe="mlp", epochs=1, out=run, progress=False)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for batching, wait_ms in ((True, 0.0), (True, 2.0), (False, 0.0)):
        server, port = start_server(run, batching, wait_ms)
        try:
            info = get(port, "/info")
            code = [[0.1] * info["latent_dim"]]
            image = png_of(np.random.default_rng(0).random(info["data_shape"][1:]))
            bodies = {"/decode": {"z": code}, "/encode": {"images": [image]}}
            for path, body in bodies.items():
                load(port, path, body, args.clients, 1.0)  # warm up
                rss = rss_kib(server.pid)
                shapes = [(1, args.seconds)] if not wait_ms else []  # one request at a time, with and without
                for clients, seconds in shapes + [(args.clients, args.seconds)]:
                    before = get(port, "/info")["served"]
                    row = load(port, path, body, clients, seconds)
                    after = get(port, "/info")["served"]
                    passes = after[path]["passes"] - before[path]["passes"]
                    items = after[path]["requests"] - before[path]["requests"]
                    print(json.dumps({"path": path, "batching": batching, "wait_ms": wait_ms, "clients": clients, **{
                        k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()},
                        "requests_per_pass": round(items / passes, 2) if passes else None,
                        "rss_mib_before": round(rss / 1024, 1), "rss_mib_after": round(rss_kib(server.pid) / 1024, 1),
                        "load_average": round(os.getloadavg()[0], 2)}))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
