"""The part-by-part editor in the browser: a Flask app over a trained NP-DRAW model (npdraw.app.api).

    npdraw edit --serve            # or: make editor; then open http://127.0.0.1:8765

The page (npdraw/app/static/editor.html, plain HTML and JavaScript, no build step) shows the grid of
cells over the canvas, the part bank and the decoded image.  A person starts from an empty canvas, a
sample of the prior or an encoded test image, picks a part (or the eraser) and a cell, and the canvas,
the decoded image and the prior's log-probability of the edited latents update at once; the result can
be saved as a PNG.

The editor's state is one part (or none) per cell, in raster order: the form of the parses the prior was
trained on (step t draws in cell t), so that log p(z) scores the edit as the prior knows it.  A sample
or a posterior that draws twice in one cell keeps the later part there (the page says how many such
steps it dropped).  The JSON API:

    GET  /api/info                          grid, sizes and the part bank (PNG data URIs)
    GET  /api/start?source=empty|sample|test&seed=N&index=I
    POST /api/render  {"cells": [...]}      canvas, decoded image, log p(z); 400 with a message on bad input
    POST /api/png     {"cells": [...]}      the canvas and the decoded image side by side, as a PNG file

It binds to 127.0.0.1 unless told otherwise: it is a local tool, with no authentication, so it answers only
requests addressed to the host it serves (a page elsewhere that resolves its own name to 127.0.0.1, DNS
rebinding, is refused), refuses writes from another origin, reads JSON bodies of at most MAX_BODY bytes
and MAX_DEPTH levels of nesting, answers every bad request with a 4xx and a message, and names its model
by file name only.
"""

from __future__ import annotations

import base64
import io
from importlib import resources
from pathlib import Path

import numpy as np
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from npdraw.app.api import TrainedModel, load
from npdraw.artifacts.bounds import SEED, Bound
from npdraw.artifacts.errors import NpdrawError
from npdraw.reporting.viz import image_grid

SCALE = 10          # screen pixels per canvas pixel
MAX_BODY = 64_000   # bytes of a JSON body (one cell list of an 8 x 8 grid is about 300)
MAX_DEPTH = 4       # levels of nesting in a JSON body ({"cells": [...]} has 2)
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


class BadRequest(Exception):
    """What the page sent cannot be used; answered with 400 and the message."""


def png_uri(image: np.ndarray, scale: int = SCALE) -> str:
    """A (C, H, W) image in [0, 1] as a PNG data URI, each pixel `scale` x `scale`."""
    picture = image_grid(image[None], ncol=1, scale=scale, pad=0)
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Editor:
    """The editor's logic, apart from the web: cells <-> latents, rendering, scoring."""

    def __init__(self, model: TrainedModel, test_images: np.ndarray | None = None):
        self.m = model
        self.cells = model.grid.cells
        self.parts = len(model.bank)
        self.test_images = test_images

    def info(self) -> dict:
        g = self.m.grid
        return {"n": g.n, "cells": self.cells, "patch": g.patch, "side": g.side, "pad": list(g.pad),
                "image_size": self.m.image_size, "parts": self.parts, "scale": SCALE,
                "bank": [png_uri(part, 6) for part in self.m.bank], "model": self.m.path.name,
                "test_images": 0 if self.test_images is None else len(self.test_images)}

    def check(self, cells) -> list[int]:
        """The cells the page sent: a list of one part index (0..M-1) or -1 (empty) per cell."""
        if not isinstance(cells, list) or len(cells) != self.cells:
            raise BadRequest(f"cells: expected a list of {self.cells} entries (one per cell), got "
                             f"{len(cells) if isinstance(cells, list) else type(cells).__name__}")
        for i, part in enumerate(cells):
            if isinstance(part, bool) or not isinstance(part, int) or not -1 <= part < self.parts:
                raise BadRequest(f"cell {i}: part {part!r} out of range: this bank has {self.parts} parts "
                                 f"(0 to {self.parts - 1}), or -1 for an empty cell")
        return cells

    def latents(self, cells: list[int]) -> dict[str, np.ndarray]:
        part = np.asarray(cells)
        return {"z_id": np.maximum(part, 0)[None], "z_loc": np.arange(self.cells)[None], "z_is": (part >= 0)[None]}

    def from_latents(self, z: dict[str, np.ndarray], i: int = 0) -> tuple[list[int], int]:
        """Cells of sequence i of latents (the later step wins in a cell) and how many drawing steps were
        dropped for it."""
        cells, drawn = [-1] * self.cells, 0
        for part, loc, draws in zip(z["z_id"][i], z["z_loc"][i], z["z_is"][i]):
            if draws:
                drawn += 1
                cells[int(loc)] = int(part)
        return cells, drawn - sum(c >= 0 for c in cells)

    def start(self, source: str, seed: int = 0, index: int = 0) -> dict:
        if source == "empty":
            cells, dropped, note = [-1] * self.cells, 0, "an empty canvas"
        elif source == "sample":
            cells, dropped = self.from_latents(self.m.sample(1, seed))
            note = f"a sample of the prior (seed {seed})"
        elif source == "test":
            if self.test_images is None:
                raise BadRequest("no test images: start the editor with --dataset")
            if not 0 <= index < len(self.test_images):
                raise BadRequest(f"index {index}: expected 0 to {len(self.test_images) - 1} (a test image)")
            cells, dropped = self.from_latents(self.m.encode(self.test_images[index:index + 1]))
            note = f"test image {index}, encoded (the posterior's most probable latents)"
        else:
            raise BadRequest(f"source {source!r}: expected empty, sample or test")
        if dropped:
            note += f"; {dropped} step(s) drawing in an already drawn cell dropped"
        return {"cells": cells, "note": note, **self.render(cells)}

    def render(self, cells: list[int]) -> dict:
        z = self.latents(self.check(cells))
        decoded = self.m.decode(z)
        return {"canvas": png_uri(decoded["canvases"][0]), "decoded": png_uri(decoded["means"][0]),
                "log_prior": float(self.m.prior_log_prob(z)[0]), "drawn": int(z["z_is"].sum())}

    def png(self, cells: list[int]) -> bytes:
        decoded = self.m.decode(self.latents(self.check(cells)))
        canvas = decoded["canvases"][0]
        if canvas.shape[-1] != self.m.image_size:   # CelebA's 32-pixel canvas beside its 64-pixel image
            factor = self.m.image_size // canvas.shape[-1]
            canvas = np.kron(canvas, np.ones((1, factor, factor)))
        buf = io.BytesIO()
        image_grid(np.stack([canvas, decoded["means"][0]]), ncol=2, scale=6).save(buf, format="PNG")
        return buf.getvalue()


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings aside), without
    parsing it: a body nested deeper than MAX_DEPTH is refused before json.loads could recurse on it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw.decode("utf-8", errors="replace"):
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def create_app(model: str | Path | TrainedModel | None = None, test_images: np.ndarray | None = None,
               port: int | None = None, host: str = "127.0.0.1") -> Flask:
    """The editor's Flask app over `model` (a checkpoint path, or a loaded model; default: the reference
    model) and, for the 'test image' start, uint8 test images (N, C, H, W).  It answers requests whose Host
    header names `host` or a local name (LOCAL_NAMES) with `port` (None: any port); served on all interfaces
    (host 0.0.0.0 or ::) it cannot know its names and answers any."""
    editor = Editor(model if isinstance(model, TrainedModel) else load(model), test_images)
    names = None if host in ("0.0.0.0", "::") else (*LOCAL_NAMES, host)
    index_bound = Bound("index", 0, max(0, (0 if test_images is None else len(test_images)) - 1), "a test image")
    app = Flask("npdraw.editor")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    @app.errorhandler(BadRequest)
    def bad(err):
        return jsonify({"error": str(err)}), 400

    @app.errorhandler(HTTPException)
    def http(err):   # 404, 405, 413, ...: JSON with a message, never an HTML page
        return jsonify({"error": f"{err.code} {err.name}: {err.description}"}), err.code

    @app.errorhandler(NpdrawError)
    def known(err):   # a number or an image the model refuses
        return jsonify({"error": str(err)}), 400

    @app.before_request
    def local_only():
        name, _, served = request.host.rpartition(":") if not request.host.endswith("]") else (request.host, "", "")
        name = name or request.host
        if (names is not None and name not in names) or (port is not None and served != str(port)):
            where = " or ".join(f"{n}:{port or 'PORT'}" for n in (names or ()))
            return jsonify({"error": f"Host {request.host!r}: this editor answers requests to {where} only"}), 403
        origin = request.headers.get("Origin")
        if request.method != "GET" and origin is not None and origin != f"http://{request.host}":
            return jsonify({"error": f"Origin {origin!r}: writes come from the editor's own page only"}), 403
        return None

    def cells_of_request() -> list[int]:
        raw = request.get_data(cache=True)
        if json_depth(raw) > MAX_DEPTH:
            raise BadRequest(f"a JSON body nested more than {MAX_DEPTH} levels deep; expected {{\"cells\": [...]}}")
        if not request.is_json:
            raise BadRequest('expected Content-Type: application/json and a body {"cells": [...]}')
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "cells" not in body:
            raise BadRequest('expected a JSON body {"cells": [...]}')
        return body["cells"]

    def number(bound: Bound, default: int) -> int:
        value = request.args.get(bound.name, str(default))
        try:
            return bound.check(int(value))
        except ValueError:
            raise BadRequest(f"{bound.name} {value!r}: expected a whole number from {bound.low:,} to "
                             f"{bound.high:,} ({bound.what})") from None

    @app.get("/")
    def page():
        html = resources.files("npdraw.app").joinpath("static/editor.html").read_text()
        return Response(html, mimetype="text/html")

    @app.get("/api/info")
    def info():
        return jsonify(editor.info())

    @app.get("/api/start")
    def start():
        source = request.args.get("source", "empty")
        index = number(index_bound, 0) if source == "test" and test_images is not None else 0
        return jsonify(editor.start(source, number(SEED, 0), index))

    @app.post("/api/render")
    def render():
        return jsonify(editor.render(cells_of_request()))

    @app.post("/api/png")
    def png():
        return Response(editor.png(cells_of_request()), mimetype="image/png",
                        headers={"Content-Disposition": "attachment; filename=npdraw-edit.png"})

    app.config["editor"] = editor
    return app


def test_images_of(dataset: str | None, channels: int, side: int) -> np.ndarray | None:
    """The first 1,000 test images of `dataset` (read from the data mirror as the pipeline reads it), or
    None without a dataset."""
    if dataset is None:
        return None
    from npdraw.data.prepare import load_source
    from npdraw.workflow.closure import REPO
    from npdraw.workflow.params import load_params

    ds = load_params(REPO / "params.yaml")["datasets"].get(dataset)
    if ds is None:
        raise NpdrawError(f"--dataset {dataset!r}: not a dataset of params.yaml")
    arrays, _ = load_source(ds["source"], ds, dataset, allow_download=False)
    images = np.asarray(arrays["test_images"][:1000])
    if images.shape[1:] != (channels, side, side):
        raise NpdrawError(f"--dataset {dataset!r}: its images are {images.shape[1:]}, the model takes "
                          f"{(channels, side, side)}")
    return images


def serve(model: str | Path | None, host: str = "127.0.0.1", port: int = 8765, dataset: str | None = "mnist",
          open_browser: bool = True) -> None:
    """Run the editor until interrupted (Ctrl-C)."""
    trained = load(model)
    app = create_app(trained, test_images_of(dataset, trained.channels, trained.image_size), port, host)
    url = f"http://{host}:{port}/"
    print(f"npdraw editor: {url} (model {trained.path}); Ctrl-C stops it", flush=True)
    if open_browser:
        import webbrowser
        webbrowser.open(url)
    app.run(host=host, port=port, debug=False, use_reloader=False)
