"""Use a trained model of any system without the pipeline: sample, score, reconstruct; and NP-DRAW's parts:
encode, decode, parse, edit.

    import npdraw
    model = npdraw.load()                       # the committed reference model (results/reference/mnist)
    drawn = model.sample(8, seed=0)             # images (8, 1, 28, 28) in [0, 1], canvases, latents
    latents = model.encode(images)              # the posterior's most probable latents and their canvases
    means = model.decode(latents)["images"]     # the decoder's Bernoulli means
    nll = model.log_likelihood(images)          # importance-sampled bound, nats per image (S = 50)
    vae = npdraw.load("results/mnist/quick/full/seed0/vae/model/best.pt")   # any system's checkpoint
    vae.sample(8), vae.log_likelihood(images), vae.reconstruct(images)

Images go in as uint8 arrays (N, H, W) or (N, C, H, W) of grey levels 0-255, ink bright (as MNIST), or
as floats in [0, 1]; an image of another size or number of channels, a NaN, or a value out of range is
refused with what is expected.  Latents are dicts of (N, T) integer arrays: `z_id` (part index), `z_loc`
(cell index), `z_is` (drawn or not, bool or 0 / 1), all three of one batch size.  Every number a person
gives (counts, seeds, sample sizes) is checked against its declared range (npdraw.artifacts.bounds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.bounds import SEED, Bound
from npdraw.artifacts.errors import CheckpointError, DataError
from npdraw.artifacts.io import read_checkpoint
from npdraw.data.binarize import binarize
from npdraw.evaluation.editing import posterior_mode
from npdraw.evaluation.importance import importance_sampled
from npdraw.models.checkpoints import load_model
from npdraw.models.npdraw import hard_sample
from npdraw.parts.canvas import render, to_canvas_space
from npdraw.parts.parser import parse_cells
from npdraw.workflow.closure import REPO
from npdraw.workflow.params import load_params
from npdraw.workflow.systems import SYSTEMS, system

# The committed reference model (scripts/collect_reference.py puts it there).
REFERENCE_MODEL = REPO / "results/reference/mnist/model.pt"
# The evaluation's seed for binarising grey images once (evaluate.seed) and its sample count (S).
DEFAULTS = load_params(REPO / "params.yaml") if (REPO / "params.yaml").is_file() else None
# What a person may ask for: images sampled at once, importance samples per image.
COUNT = Bound("n", 1, 100_000, "images to sample")
SAMPLES = Bound("samples", 1, 100_000, "importance samples per image")
MEMORY_SHARE = 0.25   # of the memory available now: the most a request's outputs may take
BATCH = 500           # images drawn at once (the evaluation's batch)


def _default(section: str, key: str, fallback):
    return DEFAULTS[section][key] if DEFAULTS is not None else fallback


class NoParts(DataError):
    """The model's system draws no parts: the method asked for is NP-DRAW's."""


def check_memory(n: int, bytes_each: int, what: str) -> None:
    """Refuse, before allocating, a request whose outputs (n x bytes_each) would not fit in MEMORY_SHARE of
    the memory available now."""
    import psutil

    need, free = n * bytes_each, psutil.virtual_memory().available
    if need > MEMORY_SHARE * free:
        raise DataError(f"{what}: {n:,} would take about {need / 2**30:.1f} GiB, more than {MEMORY_SHARE:.0%} of the "
                        f"{free / 2**30:.1f} GiB of memory available; ask for fewer")


class TrainedModel:
    """A trained model of any system (npdraw.workflow.systems) and what a person does with it (module
    docstring); `model` is the torch module, in eval mode on the CPU.  The part-level methods (encode,
    decode, parse, prior_log_prob, bank, canvas) are NP-DRAW's: a system without parts says so."""

    def __init__(self, model, path: Path):
        self.model, self.path = model, path
        self.system = system(model.kind)
        self.parts = self.system.parts
        cfg = model.cfg
        if self.parts:
            self.grid = model.grid
            self.channels, self.image_size, self.binary = cfg.channels, cfg.image_size, cfg.output == "bernoulli"
        else:   # the baselines model binary single-channel images (npdraw.workflow.systems: binary_only)
            self.grid, self.channels, self.binary = None, 1, True
            self.image_size = getattr(cfg, "image_size", getattr(model, "image_size", 28))

    def _needs_parts(self, method: str) -> None:
        if not self.parts:
            raise NoParts(f"{method}: the {self.system.label} model ({self.path.name}, kind {self.model.kind}) "
                          f"draws no parts; {method} is NP-DRAW's. sample, log_likelihood and reconstruct work "
                          f"for every system")

    # --- images in ----------------------------------------------------------------------------

    def images(self, images, what: str = "images") -> torch.Tensor:
        """`images` as float (N, C, H, W) in [0, 1], checked against what the model takes (DataError
        naming `what` and the expected shape, type or range otherwise)."""
        expected = (f"{self.image_size}x{self.image_size} images with {self.channels} channel"
                    f"{'s' if self.channels > 1 else ''} (uint8 grey levels 0-255, ink bright, or floats in [0, 1])")
        array = np.asarray(images)
        if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or
                                           np.issubdtype(array.dtype, np.floating)):
            raise DataError(f"{what}: values of type {array.dtype}; this model takes {expected}")
        x = torch.as_tensor(array)
        if x.dim() == 2:
            x = x[None]
        if x.dim() == 3:
            x = x[:, None] if self.channels == 1 else x[None]
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise DataError(f"{what}: shape {tuple(x.shape)}; this model takes {expected}")
        if not x.is_floating_point():
            if x.dtype != torch.uint8 and len(x) and (x.min() < 0 or x.max() > 255):
                raise DataError(f"{what}: integer values outside 0-255; this model takes {expected}")
            return x.float() / 255
        x = x.float()
        if len(x) and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
            raise DataError(f"{what}: float values outside [0, 1] (or not finite); this model takes {expected}")
        return x

    def targets(self, images, seed: int | None = None, what: str = "images") -> torch.Tensor:
        """The images as the model scores them: binary data drawn once from the grey levels with a fixed
        seed (evaluate.seed), as the evaluation binarises its test images, each image with its own
        generator (so an image's draw does not depend on the others given with it); already binary images
        stay as they are."""
        x = self.images(images, what)
        if not self.binary:
            return torch.round(x * 255) / 255
        seed = SEED.check(_default("evaluate", "seed", 1234) if seed is None else seed)
        return torch.stack([binarize(xi, torch.Generator().manual_seed(seed)) for xi in x]) if len(x) else x

    # --- every system: sample, score, reconstruct -----------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """n draws: `images` (a Bernoulli draw for binary data) and the decoder's `means` where the system has
        them; NP-DRAW also gives its `canvases` (N, C, S, S) and the latents."""
        n, seed = COUNT.check(n), SEED.check(seed)
        side = self.image_size
        per_image = 4 * self.channels * side * side * 3 + (17 * self.grid.cells if self.parts else 0)
        check_memory(n, per_image, f"sample n = {n:,}")
        g = torch.Generator().manual_seed(seed)
        chunks = [self._draw(min(BATCH, n - s), g) for s in range(0, n, BATCH)]
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def _draw(self, n: int, g: torch.Generator) -> dict[str, np.ndarray]:
        if not self.parts:
            drawn = self.model.sample(n, g)
            return {k: v.numpy() for k, v in drawn.items() if v is not None}
        z_id, z_loc, z_is, canvas = self.model.prior.sample(n, g)
        params = self.model.decoder(canvas)
        means = self.model.output.mean(params)
        images = self.model.output.sample(params, g)
        return {"images": images.numpy(), "means": means.numpy(), "canvases": canvas.numpy(),
                **self._latents(z_id, z_loc, z_is)}

    @torch.no_grad()
    def log_likelihood(self, images, samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """-log p(x) bounded by importance sampling (Burda et al.) with S = `samples` posterior samples per
        image, nats per image (float64): the pipeline's evaluation, on these images, each scored on its own
        with the same seed (its number does not depend on the others given with it)."""
        samples = SAMPLES.check(_default("evaluate", "nll_samples", 50) if samples is None else samples)
        seed = SEED.check(_default("evaluate", "seed", 1234) if seed is None else seed)
        x = self.targets(images, seed)
        return np.array([importance_sampled(self.model, xi[None], samples, seed=seed, progress=False)["nll_nats"][0]
                         for xi in x], dtype=np.float64)

    @torch.no_grad()
    def reconstruct(self, images, seed: int = 0) -> np.ndarray:
        """The decoder's mean image of each image's posterior (N, C, H, W) in [0, 1] (the model's own rule:
        NP-DRAW and DRAW decode a posterior sample or mean, the PixelVAE greedily)."""
        seed = SEED.check(seed)
        x = self.targets(images, seed)
        return self.model.reconstruct(x, torch.Generator().manual_seed(seed)).numpy()

    # --- NP-DRAW's parts ------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, images, sample: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
        """The posterior's latents of each image, its most probable ones (or one draw with `sample`), and
        the canvases they draw (N, C, S, S)."""
        self._needs_parts("encode")
        seed = SEED.check(seed)
        x = self.targets(images, seed)
        q = self.model.encoder(x)
        z = hard_sample(q, torch.Generator().manual_seed(seed)) if sample else posterior_mode(self.model, x)
        return {**self._latents(*z), "canvases": self.model.canvas(*z).numpy()}

    @torch.no_grad()
    def decode(self, latents: dict | None = None, canvas=None) -> dict[str, np.ndarray]:
        """The decoder's output of latents (a dict of z_id, z_loc, z_is) or of canvases (N, C, S, S) in
        [0, 1]: `means`, and `canvases`."""
        self._needs_parts("decode")
        if (latents is None) == (canvas is None):
            raise DataError("decode: give latents or a canvas, one of them")
        canvas = self.canvas(latents) if canvas is None else self.check_canvas(canvas)
        means = self.model.output.mean(self.model.decoder(canvas))
        return {"means": means.numpy(), "images": means.numpy(), "canvases": canvas.numpy()}

    def check_canvas(self, canvas) -> torch.Tensor:
        """Canvases (N, C, S, S) of floats in [0, 1], or a DataError saying what is wrong."""
        side = self.grid.side
        array = np.asarray(canvas)
        if not np.issubdtype(array.dtype, np.floating):
            raise DataError(f"canvas: values of type {array.dtype}; expected floats in [0, 1]")
        c = torch.as_tensor(array, dtype=torch.float32)
        if c.dim() != 4 or tuple(c.shape[1:]) != (self.channels, side, side):
            raise DataError(f"canvas: shape {tuple(c.shape)}; expected (N, {self.channels}, {side}, {side})")
        if len(c) and (not torch.isfinite(c).all() or c.min() < 0 or c.max() > 1):
            top = float(c[torch.isfinite(c)].max()) if torch.isfinite(c).any() else float("nan")
            hint = "; divide 0-255 levels by 255" if 1 < top <= 255 else ""
            raise DataError(f"canvas: values outside [0, 1] or not finite (largest finite {top:g}){hint}")
        return c

    @property
    def bank(self) -> np.ndarray:
        """The part bank (M, C, K, K) in [0, 1]."""
        self._needs_parts("bank")
        return self.model.bank.numpy()

    @torch.no_grad()
    def parse(self, images, epsilon: float | None = None) -> dict[str, np.ndarray]:
        """The heuristic parse (paper Algorithm 1) of each image with the model's bank: latents, canvases."""
        self._needs_parts("parse")
        epsilon = _default("parse", "epsilon", 0.01) if epsilon is None else epsilon
        x = self.images(images)
        side = self.grid.side
        canvas_x = to_canvas_space((x * 255).round().to(torch.uint8).numpy(),
                                   {"image_size": self.image_size, "canvas_size": side})
        z_id, z_is = parse_cells(canvas_x, self.model.bank, self.grid, epsilon)
        z_loc = torch.arange(self.grid.cells).expand_as(z_id)
        return {**self._latents(z_id, z_loc, z_is), "canvases": render(self.model.bank, z_id, z_loc, z_is,
                                                                       self.grid).numpy()}

    def canvas(self, latents: dict) -> torch.Tensor:
        """The canvas (N, C, S, S) that latents draw, after checking their types, shapes and ranges."""
        self._needs_parts("canvas")
        z_id, z_loc, z_is = self.check_latents(latents)
        return self.model.canvas(z_id, z_loc, z_is)

    @torch.no_grad()
    def prior_log_prob(self, latents: dict) -> np.ndarray:
        """log p(z) under the model's prior, nats per sequence."""
        self._needs_parts("prior_log_prob")
        return self.model.prior.log_prob(*self.check_latents(latents))["total"].double().numpy()

    def check_latents(self, latents: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z_id, z_loc, z_is) tensors from a dict of (N, T) integer arrays (z_is: bool or 0 / 1), all of one
        batch size; DataError naming the key, the value and what it must be."""
        self._needs_parts("check_latents")
        if not isinstance(latents, dict):
            raise DataError(f"latents: a {type(latents).__name__}; expected a dict of z_id, z_loc and z_is")
        steps, parts, cells = self.model.prior.cfg.steps, self.model.cfg.parts, self.grid.cells
        out = []
        for key, top in (("z_id", parts), ("z_loc", cells), ("z_is", 2)):
            if key not in latents:
                raise DataError(f"latents: no {key!r} (expected z_id, z_loc and z_is, each (N, {steps}))")
            array = np.asarray(latents[key])
            if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
                raise DataError(f"latents[{key!r}]: values of type {array.dtype}; expected whole numbers (integer "
                                f"arrays{', or bool' if key == 'z_is' else ''})")
            z = torch.as_tensor(array.astype(np.int64))
            if z.dim() == 1:
                z = z[None]
            if z.dim() != 2 or z.shape[1] != steps:
                raise DataError(f"latents[{key!r}]: shape {tuple(z.shape)}, expected (N, {steps})")
            if len(z) and (z.min() < 0 or z.max() >= top):
                bad = int(z[(z < 0) | (z >= top)][0])
                raise DataError(f"latents[{key!r}]: {bad} out of range: expected 0 to {top - 1}"
                                + (f" (this bank has {parts} parts)" if key == "z_id" else ""))
            out.append(z)
        if len({len(z) for z in out}) > 1:
            raise DataError(f"latents: batch sizes differ (z_id {len(out[0])}, z_loc {len(out[1])}, z_is "
                            f"{len(out[2])}); expected one N for all three")
        return out[0], out[1], out[2].bool()

    @staticmethod
    def _latents(z_id, z_loc, z_is) -> dict[str, np.ndarray]:
        return {"z_id": z_id.numpy().astype(np.int64), "z_loc": z_loc.numpy().astype(np.int64),
                "z_is": z_is.numpy().astype(bool)}


def load(path: str | Path | None = None) -> TrainedModel:
    """A trained model of any system from a checkpoint the pipeline wrote (a run's model/best.pt; default:
    the committed reference model).  A checkpoint that is damaged or of no system is refused by name."""
    path = Path(path) if path is not None else REFERENCE_MODEL
    if not path.is_file():
        hint = " (the committed reference model: is this a clone of the repository?)" if path == REFERENCE_MODEL else ""
        raise CheckpointError(f"{path}: no such checkpoint{hint}; give a run's model/best.pt")
    kind = read_checkpoint(path).get("kind")
    if kind not in SYSTEMS:
        raise CheckpointError(f"{path}: a {kind} checkpoint; this needs a trained model of one of the systems "
                              f"{', '.join(SYSTEMS)} (a run's model/best.pt)")
    return TrainedModel(load_model(path, "cpu"), path)
