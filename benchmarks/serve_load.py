"""Load test of ``vaekit serve``: N concurrent clients for T seconds against /decode and /encode on
127.0.0.1, with micro-batching on (taking what queued, or waiting 2 ms for more) and off, against one request at a time.

    python benchmarks/serve_load.py --clients 16 --seconds 10 --repeats 3 [--run RUN]

The server is `vaekit serve` in its own process; the load generator is one asyncio process with
keep-alive connections (one request in flight on each), on the same cores. Each row: requests per second,
p50/p99 latency, errors (any status but 200), the server's RSS before and after, the requests per forward
pass, and the CPU milliseconds per request of the server and of the load generator (the load generator's
share shows it is not the bottleneck). The peer: an empty ASGI app (a fixed 80-byte JSON answer) under the
same uvicorn, one client and N, in the same repeat: the most the cores allow at their present load.
Writes benchmarks/results/serve_load.json and .md (medians over the repeats, the ratios taken per repeat).
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (proc(5): /proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def empty_app(port: int) -> None:
    """The peer: uvicorn as `vaekit serve` runs it, over an app that reads the body and answers fixed bytes."""
    import uvicorn

    answer = json.dumps({"images": ["iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAGElEQVR4"]}).encode()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = answer if scope["path"] != "/info" else json.dumps({"latent_dim": 2, "served": {}}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False)


def start_server(run: str, batching: bool, wait_ms: float, empty: bool = False) -> tuple:
    port = free_port()
    command = [sys.executable, "-m", "vaekit", "serve", run, "--port", str(port),
               "--batching" if batching else "--no-batching", "--batch-wait", str(wait_ms)]
    if empty:
        command = [sys.executable, __file__, "--empty-app", str(port)]
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


def load(port: int, path: str, body: dict, clients: int, seconds: float, server_pid: int) -> dict:
    payload = json.dumps(body).encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    latencies, errors = [], []

    async def run():
        until = time.perf_counter() + seconds
        await asyncio.gather(*(client(port, request, until, latencies, errors) for _ in range(clients)))
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    asyncio.run(run())
    server_cpu, client_cpu = cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "per_s": len(ms) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": len(errors),
            "server_cpu_ms": 1000 * server_cpu / len(ms), "client_cpu_ms": 1000 * client_cpu / len(ms)}


def png_of(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((image * 255).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def measure(run: str, clients: int, seconds: float, repeat: int) -> list:
    """One repeat: every server set-up in its own process, one client and ``clients``; a row per load."""
    rows = []
    for name, batching, wait_ms in (("on", True, 0.0), ("on, wait 2 ms", True, 2.0), ("off", False, 0.0),
                                    ("empty app", True, 0.0)):
        server, port = start_server(run, batching, wait_ms, empty=name == "empty app")
        try:
            info = get(port, "/info")
            code = [[0.1] * info["latent_dim"]]
            image = png_of(np.random.default_rng(0).random((8, 8)))
            bodies = {"/decode": {"z": code}, "/encode": {"images": [image]}}
            for path, body in list(bodies.items())[:1 if name == "empty app" else 2]:
                load(port, path, body, clients, 1.0, server.pid)  # warm up
                rss = rss_kib(server.pid)
                for n in ([1] if not wait_ms else []) + [clients]:  # one request at a time, and many
                    before = get(port, "/info")["served"].get(path, {"passes": 0, "requests": 0})
                    row = load(port, path, body, n, seconds, server.pid)
                    after = get(port, "/info")["served"].get(path, {"passes": 0, "requests": 0})
                    passes, items = after["passes"] - before["passes"], after["requests"] - before["requests"]
                    rows.append({"repeat": repeat, "path": path, "batching": name, "clients": n, **{
                        k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()},
                        "requests_per_pass": round(items / passes, 2) if passes else None,
                        "rss_mib_before": round(rss / 1024, 1), "rss_mib_after": round(rss_kib(server.pid) / 1024, 1),
                        "load_average": round(os.getloadavg()[0], 2)})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            server.terminate()
            server.wait(10)
    return rows


def summary(rows: list, clients: int) -> tuple:
    """Medians over the repeats per (path, set-up, clients), and each set-up's ratio of N clients to one
    client, taken within each repeat and then its median."""
    from statistics import median

    keys = list(dict.fromkeys((r["path"], r["batching"], r["clients"]) for r in rows))
    medians = []
    for path, setup, n in keys:
        same = [r for r in rows if (r["path"], r["batching"], r["clients"]) == (path, setup, n)]
        medians.append({"path": path, "batching": setup, "clients": n, "repeats": len(same), **{
            k: round(median(r[k] for r in same), 3) for k in ("per_s", "p50_ms", "p99_ms", "server_cpu_ms",
                                                                "client_cpu_ms", "load_average")},
            "errors": sum(r["errors"] for r in same), "requests_per_pass": same[-1]["requests_per_pass"],
            "rss_mib": f"{same[-1]['rss_mib_before']} -> {same[-1]['rss_mib_after']}"})
    ratios = {}
    for path, setup, n in keys:
        if n == clients and (path, setup, 1) in keys:
            per = [m["per_s"] / o["per_s"] for m in rows for o in rows
                   if (m["path"], m["batching"], m["clients"]) == (path, setup, n)
                   and (o["path"], o["batching"], o["clients"]) == (path, setup, 1) and o["repeat"] == m["repeat"]]
            ratios[f"{path} {setup}"] = {"median": round(median(per), 2), "each": [round(r, 2) for r in per]}
    return medians, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", help="A run directory (default: train the mlp recipe on digits for 1 epoch).")
    args = parser.parse_args()
    if not (1 <= args.clients <= MAX_CLIENTS and 0 < args.seconds <= MAX_SECONDS and 1 <= args.repeats <= 9):
        parser.error(f"--clients must lie in 1..{MAX_CLIENTS}, --seconds in (0, {MAX_SECONDS}], --repeats in 1..9")
    run = args.run
    if run is None:
        import vaekit

        run = str(Path(tempfile.mkdtemp()) / "mlp")
        vaekit.train("digits", recipe="mlp", epochs=1, out=run, progress=False)
    before = os.getloadavg()[0]
    print(f"load average before: {before:.2f} on {os.cpu_count()} cores")
    rows = [row for repeat in range(args.repeats) for row in measure(run, args.clients, args.seconds, repeat)]
    medians, ratios = summary(rows, args.clients)
    command = (f"python benchmarks/serve_load.py --clients {args.clients} --seconds {args.seconds:g} "
               f"--repeats {args.repeats}")
    lines = [f"`{command}` (load average {before:.2f} before, on {os.cpu_count()} shared cores; medians of "
             f"{args.repeats} repeats)", "",
             "| endpoint | clients | batching | requests/s | p50 ms | p99 ms | errors | requests per pass | "
             "server CPU ms/request | client CPU ms/request | server RSS MiB |", "|" + "---|" * 11]
    lines += [f"| `{m['path']}` | {m['clients']} | {m['batching']} | {m['per_s']:,.0f} | {m['p50_ms']:.2f} | "
              f"{m['p99_ms']:.2f} | {m['errors']} | {m['requests_per_pass']} | {m['server_cpu_ms']:.3f} | "
              f"{m['client_cpu_ms']:.3f} | {m['rss_mib']} |" for m in medians]
    lines += ["", f"Throughput of {args.clients} clients over one (per repeat, median):"]
    lines += [f"- `{key}`: {r['median']}x ({', '.join(map(str, r['each']))})" for key, r in ratios.items()]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_common import write

    write("serve_load", {"command": command, "load_average_before": before, "rows": rows, "medians": medians,
                         "ratios": ratios}, lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--empty-app"]:
        empty_app(int(sys.argv[2]))
    else:
        main()
