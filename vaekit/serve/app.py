"""The web app of ``vaekit serve``: a JSON API (FastAPI, documented at /docs and /openapi.json) and the
latent explorer page at /. It talks to a backend (backend.py) only, never to torch.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Literal, Optional, Union

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError

from ..errors import VaekitError
from .batching import MicroBatcher, Runner
from .codec import BadInput, as_array, as_labels, decode_pngs, encode_png

MAX_ROWS = 256  # examples or codes in one request, and n of /sample
MAX_BODY = 4 << 20  # bytes of one request body
Label = Optional[Union[int, List[int]]]
Format = Literal["png", "array"]


class Codes(BaseModel):
    z: List[List[float]] = Field(..., max_length=MAX_ROWS, description="Codes (B, latent_dim), flat for a latent "
                                 "map; B at most 256.")
    label: Label = Field(None, description="A conditional model's class: one for all codes, or one per code.")
    format: Format = Field("png", description="png: base64 PNGs (images only); array: nested lists in the data's "
                           "units.")


class Examples(BaseModel):
    images: Optional[List[str]] = Field(None, max_length=MAX_ROWS, description="Base64 PNGs of the model's size.")
    x: Optional[List[Any]] = Field(None, max_length=MAX_ROWS, description="Or arrays (B, *data_shape) in the data's "
                                   "units (images in [0, 1]).")
    label: Label = Field(None, description="A conditional model's class: one for all, or one per example.")
    format: Format = Field("png", description="Of /reconstruct's output: png (images only) or array.")


class SampleRequest(BaseModel):
    n: int = Field(16, ge=1, le=MAX_ROWS, description="How many samples (1..256).")
    label: Optional[int] = Field(None, description="A conditional model's class.")
    seed: Optional[int] = Field(None, ge=0, lt=2 ** 63, description="Random seed (default: fresh).")
    format: Format = "png"


class Moments(BaseModel):
    mean: List[List[float]]
    var: Optional[List[List[float]]] = Field(None, description="None where the posterior has no variance.")


class Outputs(BaseModel):
    images: Optional[List[str]] = Field(None, description="Base64 PNGs, with format png.")
    x: Optional[List[Any]] = Field(None, description="Arrays (B, *data_shape), with format array.")


def make_app(backend, token: Optional[str] = None, batching: bool = True, wait_ms: float = 0.0,
             points: Optional[dict] = None, max_body: int = MAX_BODY) -> FastAPI:
    """The ASGI app serving ``backend``; ``token``: the bearer token every request but the page shell needs;
    ``points``: the explorer's latent map (explorer.latent_map)."""
    info = backend.info()
    shape, latent_dim, classes = info["data_shape"], info["latent_dim"], info["num_classes"]
    executor = ThreadPoolExecutor(1, thread_name_prefix="vaekit-model")  # the forward passes that take long
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for each in app.state.batchers:
            each.close()
        executor.shutdown(wait=False)

    app = FastAPI(title="vaekit serve", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                  description=f"The {info['variant']} model of a vaekit run. Every request but GET / needs "
                              f"'Authorization: Bearer TOKEN' when the server was started with --token.")
    served = {path: {"requests": 0, "passes": 0} for path in ("/decode", "/encode", "/reconstruct")}

    def counted(path: str, items) -> None:  # forward passes and the requests they answered (the load test reads them)
        served[path]["passes"] += 1
        served[path]["requests"] += len(items)

    def split(results: np.ndarray, items) -> list:
        bounds = np.cumsum([len(item[0]) for item in items])[:-1]
        return np.split(results, bounds)

    def joined(items):
        x = np.concatenate([item[0] for item in items])
        return x, (None if items[0][1] is None else np.concatenate([item[1] for item in items]))

    def run_decode(items):
        counted("/decode", items)
        return split(backend.decode(*joined(items)), items)

    def run_reconstruct(items):
        counted("/reconstruct", items)
        return split(backend.reconstruct(*joined(items)), items)

    def run_encode(items):
        counted("/encode", items)
        mean, var = backend.encode(*joined(items))
        return list(zip(split(mean, items), split(var, items) if var is not None else [None] * len(items)))

    def batcher(fn: Callable) -> Callable:
        runner = Runner(executor)
        if not batching:
            async def alone(rows, item):
                return (await runner(fn, [item]))[0]
            return alone
        made: List[MicroBatcher] = []

        async def submit(rows, item):
            if not made:  # made in the server's event loop
                made.append(MicroBatcher(fn, runner, MAX_ROWS, wait_ms))
                app.state.batchers.append(made[0])
            return await made[0].submit(rows, item)
        return submit

    app.state.batchers = []
    decode_, encode_, reconstruct_ = batcher(run_decode), batcher(run_encode), batcher(run_reconstruct)
    sample_ = Runner(executor)

    def images_out(x: np.ndarray, fmt: str) -> dict:
        if fmt == "array":
            return {"x": x.tolist()}
        if info["data_kind"] != "image" or len(shape) != 3 or shape[0] not in (1, 3):
            raise BadInput("format png needs image data; this model's data is a table: ask for format array")
        return {"images": [encode_png(image) for image in x]}

    def examples(body: Examples) -> np.ndarray:
        if (body.images is None) == (body.x is None):
            raise BadInput("send either images (base64 PNGs) or x (arrays), exactly one of them")
        if body.images is not None:
            return decode_pngs(body.images, shape)
        return as_array(body.x, "x", shape, "examples")

    def require(capability: str, what: str) -> None:
        why = info["can"].get(capability)
        if why:
            raise BadInput(f"{what} does not apply to the {info['variant']} model: {why}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def explorer_page():
        from .explorer import page
        return HTMLResponse(page(), headers={"Cache-Control": "no-store"})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs_page():
        from .explorer import docs_page
        return HTMLResponse(docs_page(app.openapi()))

    @app.get("/info", summary="What the model is: its variant, data and latent shapes, classes, capabilities.")
    async def get_info() -> dict:
        return dict(info, max_rows=MAX_ROWS, batching=batching, served=served)

    @app.get("/points", summary="The explorer's latent map: test-split codes, their labels, the plane's axes.")
    async def get_points() -> dict:
        if points is None:
            raise BadInput("this server has no latent map (no test data)", 404)
        return points

    async def decode(body: Codes):
        z = as_array(body.z, "z", [latent_dim], "codes")
        labels = as_labels(body.label, len(z), classes)
        return images_out(await decode_(len(z), (z, labels)), body.format)

    async def encode(body: Examples):
        require("encode", "/encode")
        x = examples(body)
        mean, var = await encode_(len(x), (x, as_labels(body.label, len(x), classes)))
        return {"mean": mean.tolist(), "var": None if var is None else var.tolist()}

    async def reconstruct(body: Examples):
        require("encode", "/reconstruct")
        x = examples(body)
        return images_out(await reconstruct_(len(x), (x, as_labels(body.label, len(x), classes))), body.format)

    async def sample(body: SampleRequest):
        require("sample", "/sample")
        label = None if body.label is None else int(as_labels(body.label, 1, classes)[0])
        if label is None:
            as_labels(None, 1, classes)  # a conditional model needs one
        x = await sample_(backend.sample, body.n, label, body.seed)
        return images_out(x, body.format)

    # the POST endpoints: documented by FastAPI (/openapi.json, /docs), answered by guarded()'s lean path
    posts = {"/decode": (decode, Codes, Outputs, "Codes to data: the likelihood's mean of each code."),
             "/encode": (encode, Examples, Moments, "Examples to codes: the posterior's mean and variance."),
             "/reconstruct": (reconstruct, Examples, Outputs,
                              "Examples to their reconstructions: the decoded posterior mean."),
             "/sample": (sample, SampleRequest, Outputs, "New data: n codes drawn from the prior, decoded.")}
    for path, (handler, _, out, summary) in posts.items():
        app.post(path, response_model=out, response_model_exclude_none=out is Outputs, summary=summary)(handler)

    @app.exception_handler(BadInput)
    @app.exception_handler(VaekitError)
    @app.exception_handler(Exception)  # a bug: ServerErrorMiddleware answers it (the two above go by their class)
    async def failed(request: Request, e: Exception):
        return JSONResponse(*answer(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse({"detail": validation_message(e.errors())}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        detail = "the body is not JSON in UTF-8" if e.detail == "There was an error parsing the body" else e.detail
        return JSONResponse({"detail": str(detail)}, status_code=e.status_code, headers=e.headers)

    return guarded(app, token, max_body, {path: (handler, body) for path, (handler, body, _, _) in posts.items()})


def answer(e: Exception) -> tuple:
    """The JSON body and status of a request that raised ``e``: a 4xx for bad input, a one-line 500 for a bug."""
    if isinstance(e, BadInput):
        return {"detail": str(e)}, e.status
    if isinstance(e, VaekitError):
        return {"detail": str(e)}, 422
    return {"detail": f"internal error ({type(e).__name__}); please report it"}, 500  # never a traceback


def parsed(model, body: bytes, content_type: bytes):
    """A POST body as ``model``, or BadInput: as FastAPI reads a JSON body (json.loads, then pydantic)."""
    if not body:
        raise BadInput("body: Field required (send a JSON object)")
    kind = content_type.split(b";")[0].strip().lower()
    if not (kind == b"application/json" or kind.startswith(b"application/") and kind.endswith(b"+json")):
        raise BadInput("body: send JSON, with the header Content-Type: application/json")
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        raise BadInput("body: the body is not valid JSON (truncated, or not UTF-8)") from None
    except UnicodeDecodeError:
        raise BadInput("the body is not JSON in UTF-8", 400) from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadInput(validation_message(e.errors())) from None


def validation_message(errors: list) -> str:
    """pydantic's errors as one line: where in the body, and what is wrong."""
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            message = "the body is not valid JSON (truncated, or not UTF-8)"
        parts.append(f"{where}: {message}")
    return "; ".join(parts) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


def guarded(app, token: Optional[str], max_body: int, posts: dict):
    """The app behind two plain ASGI layers, the bearer token (every path but GET /) and the body limit, and
    the lean path of the POST endpoints ``posts`` ({path: (handler, body model)}): the body checked by the
    same pydantic model, the handler's dict written as JSON. The whole FastAPI stack (its middleware, routing,
    dependencies and response model) took three quarters of the server's time per /decode of one code."""
    expected = f"Bearer {token}".encode() if token else None

    async def reply(send, status: int, detail, headers=()) -> None:
        body = json.dumps(detail if isinstance(detail, dict) else {"detail": detail}, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *headers]})
        await send({"type": "http.response.body", "body": body})

    async def guard(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = dict(scope["headers"])
        if expected is not None and not (scope["method"] == "GET" and scope["path"] == "/"):
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):  # constant time in the token's content
                return await reply(send, 401, "missing or wrong token: send 'Authorization: Bearer TOKEN'",
                                   [(b"www-authenticate", b"Bearer")])
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            return await reply(send, 400, "Content-Length is not a number")
        if length > max_body:
            return await reply(send, 413, f"the request body is larger than {max_body >> 20} MiB")
        chunks, size = [], 0
        while True:  # read the body here (also when it is chunked), to bound it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > max_body:
                return await reply(send, 413, f"the request body is larger than {max_body >> 20} MiB")
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), []
        if scope["method"] == "POST" and scope["path"] in posts:
            handler, model = posts[scope["path"]]
            try:
                out, status = await handler(parsed(model, body, headers.get(b"content-type", b""))), 200
            except Exception as e:  # noqa: BLE001 (answered as the app's exception handlers answer)
                out, status = answer(e)
            return await reply(send, status, out)

        async def replay():
            if sent:
                return await receive()
            sent.append(True)
            return {"type": "http.request", "body": body, "more_body": False}
        return await app(scope, replay, send)

    guard.app = app
    return guard
