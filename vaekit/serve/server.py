"""``vaekit serve RUN``: the app of app.py over the run's PyTorch model, run by uvicorn."""
from __future__ import annotations

import sys
from typing import Callable, Optional

from ..errors import VaekitError
from . import require_extra

MAP_POINTS = 1000  # test examples on the explorer's plane


def torch_app(run_dir, token: Optional[str] = None, batching: bool = True, wait_ms: float = 0.0,
              map_points: int = MAP_POINTS, note: Callable[[str], None] = print):
    """The app serving the run in ``run_dir`` with its test split's codes on the explorer's plane."""
    require_extra()
    from ..app.workflows import run_data
    from ..run import open_run
    from .app import make_app
    from .explorer import latent_map
    from .torch_backend import TorchBackend

    run = open_run(run_dir)
    backend = TorchBackend(run)
    points = None
    if run.model.can("encode"):
        try:
            data = run_data(run, None, "test")
        except VaekitError as e:
            note(f"note: the explorer shows no data points: {e}")
        else:
            x = run.info.denormalize(next(data.chunks(4 * map_points))).numpy()
            y = None if data.y is None else data.y[:len(x)].numpy()
            points = latent_map(backend, x, y, limit=map_points)
    return make_app(backend, token=token, batching=batching, wait_ms=wait_ms, points=points)


def onnx_app(folder, token: Optional[str] = None, batching: bool = True, wait_ms: float = 0.0,
             threads: Optional[int] = None):
    """The app serving the ONNX files of ``vaekit export --format onnx`` in ``folder``, without torch."""
    require_extra()
    from .app import make_app
    from .onnx_serving import OnnxServing

    return make_app(OnnxServing(folder, threads=threads), token=token, batching=batching, wait_ms=wait_ms)


def serve(run_dir, host: str = "127.0.0.1", port: int = 8000, token: Optional[str] = None,
          batching: bool = True, wait_ms: float = 0.0, threads: int = 1, onnx: bool = False) -> None:
    """Serve until Ctrl-C; another host than the loopback must be asked for, and is warned about.
    ``threads``: compute threads for a forward pass (one leaves a core to the event loop; more than one
    thread spin at every barrier when the cores are busy: a one-code decode took 20 ms, not 0.1).
    ``onnx``: ``run_dir`` is a folder of ``vaekit export --format onnx``, served by onnxruntime."""
    require_extra()
    import uvicorn

    if threads < 1:
        raise VaekitError(f"--threads must be at least 1, got {threads}")
    if not onnx:
        import torch

        torch.set_num_threads(threads)
    if not 0 <= wait_ms <= 100:
        raise VaekitError(f"--batch-wait must lie in 0..100 ms, got {wait_ms}")
    if not 0 <= port < 65536:
        raise VaekitError(f"--port must lie in 0..65535, got {port}")
    if token is not None and len(token) < 8:
        raise VaekitError("--token must have at least 8 characters")
    if onnx:
        app = onnx_app(run_dir, token=token, batching=batching, wait_ms=wait_ms, threads=threads)
    else:
        app = torch_app(run_dir, token=token, batching=batching, wait_ms=wait_ms,
                        note=lambda line: print(line, file=sys.stderr))
    warning = exposure_warning(host, token)
    if warning:
        print(warning, file=sys.stderr)
    listening = bound(host, port)
    port = listening.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    fragment = f"#token={token}" if token else ""
    print(f"serving {run_dir} at http://{shown}:{port}/{fragment} (the API: http://{shown}:{port}/docs); "
          "Ctrl-C stops", file=sys.stderr, flush=True)
    # http and loop "auto": httptools and uvloop where installed (the serve extra brings them), else h11 and asyncio
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, timeout_keep_alive=5,
                            proxy_headers=False)  # no proxy in front: X-Forwarded-For is not to be believed
    uvicorn.Server(config).run(sockets=[listening])


def exposure_warning(host: str, token: Optional[str]) -> Optional[str]:
    """The warning for a ``host`` other machines may reach (any but a loopback address), else None."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        loopback = False
    if loopback:
        return None
    return (f"warning: serving on {host}: other machines may reach this server"
            f"{'' if token else ', and no --token protects it'}")


def bound(host: str, port: int):
    """A listening TCP socket on ``host``:``port`` (0: a free port), or a one-line error saying why not."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise VaekitError(f"--host {host} is not an address of this machine") from None
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so; without it a response's headers and
    # body, written apart, waited for the client's delayed ACK: 44 ms per request on a kept-alive connection
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as e:
        listening.close()
        raise VaekitError(f"cannot listen on {host}:{port} ({e.strerror}): choose another --port or --host") from None
    listening.listen(128)
    return listening


class ServerThread:
    """An app served by uvicorn in a thread, on an ephemeral port of 127.0.0.1 (tests, benchmarks):
    ``with ServerThread(app) as url: ...``; it stops when the block ends."""

    def __init__(self, app, host: str = "127.0.0.1"):
        import threading

        import uvicorn

        self.socket = bound(host, 0)
        self.url = f"http://{host}:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
