"""Use a trained NP-DRAW model without the pipeline: sample, encode, decode, parse, score, edit.

    import npdraw
    model = npdraw.load()                       # the committed reference model (results/reference/mnist)
    drawn = model.sample(8, seed=0)             # images (8, 1, 28, 28) in [0, 1], canvases, latents
    latents = model.encode(images)              # the posterior's most probable latents and their canvases
    means = model.decode(latents)["images"]     # the decoder's Bernoulli means
    nll = model.log_likelihood(images)          # importance-sampled bound, nats per image (S = 50)

Images go in as uint8 arrays (N, H, W) or (N, C, H, W) of grey levels 0-255, ink bright (as MNIST), or
as floats in [0, 1]; an image of another size or number of channels is refused with what is expected.
Latents are dicts of (N, T) arrays: `z_id` (part index), `z_loc` (cell index), `z_is` (drawn or not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.errors import CheckpointError, DataError
from npdraw.artifacts.io import read_checkpoint
from npdraw.data.binarize import binarize
from npdraw.evaluation.editing import posterior_mode
from npdraw.evaluation.importance import importance_sampled
from npdraw.models.checkpoints import load_model
from npdraw.models.npdraw import NPDraw, hard_sample
from npdraw.parts.canvas import render, to_canvas_space
from npdraw.parts.parser import parse_cells
from npdraw.workflow.closure import REPO
from npdraw.workflow.params import load_params

# The committed reference model (scripts/collect_reference.py puts it there).
REFERENCE_MODEL = REPO / "results/reference/mnist/model.pt"
# The evaluation's seed for binarising grey images once (evaluate.seed) and its sample count (S).
DEFAULTS = load_params(REPO / "params.yaml") if (REPO / "params.yaml").is_file() else None


def _default(section: str, key: str, fallback):
    return DEFAULTS[section][key] if DEFAULTS is not None else fallback


class TrainedModel:
    """A trained NP-DRAW model and what a person does with it (module docstring); `model` is the
    torch module (npdraw.models.npdraw.NPDraw), in eval mode on the CPU."""

    def __init__(self, model: NPDraw, path: Path):
        self.model, self.path = model, path
        self.grid = model.grid
        self.channels, self.image_size = model.cfg.channels, model.cfg.image_size
        self.binary = model.cfg.output == "bernoulli"

    # --- images in ----------------------------------------------------------------------------

    def images(self, images, what: str = "images") -> torch.Tensor:
        """`images` as float (N, C, H, W) in [0, 1], checked against what the model takes (DataError
        naming `what` and the expected shape otherwise)."""
        x = torch.as_tensor(np.asarray(images))
        if x.dim() == 2:
            x = x[None]
        if x.dim() == 3:
            x = x[:, None] if self.channels == 1 else x[None]
        expected = (f"{self.image_size}x{self.image_size} images with {self.channels} channel"
                    f"{'s' if self.channels > 1 else ''} (grey levels 0-255, ink bright, or floats in [0, 1])")
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise DataError(f"{what}: shape {tuple(x.shape)}; this model takes {expected}")
        if x.dtype == torch.uint8:
            return x.float() / 255
        x = x.float()
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DataError(f"{what}: float values outside [0, 1]; this model takes {expected}")
        return x

    def targets(self, images, seed: int | None = None, what: str = "images") -> torch.Tensor:
        """The images as the model scores them: binary data drawn once from the grey levels with a fixed
        seed (evaluate.seed), as the evaluation binarises its test images, each image with its own
        generator (so an image's draw does not depend on the others given with it); already binary images
        stay as they are."""
        x = self.images(images, what)
        if not self.binary:
            return torch.round(x * 255) / 255
        seed = _default("evaluate", "seed", 1234) if seed is None else seed
        return torch.stack([binarize(xi, torch.Generator().manual_seed(seed)) for xi in x]) if len(x) else x

    # --- the model's four operations -----------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """n draws from the prior, their canvases, and the decoder's output: `images` (a Bernoulli draw for
        binary data), `means`, `canvases` (N, C, S, S), and the latents."""
        g = torch.Generator().manual_seed(seed)
        z_id, z_loc, z_is, canvas = self.model.prior.sample(n, g)
        params = self.model.decoder(canvas)
        means = self.model.output.mean(params)
        images = self.model.output.sample(params, g)
        return {"images": images.numpy(), "means": means.numpy(), "canvases": canvas.numpy(),
                **self._latents(z_id, z_loc, z_is)}

    @torch.no_grad()
    def encode(self, images, sample: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
        """The posterior's latents of each image, its most probable ones (or one draw with `sample`), and
        the canvases they draw (N, C, S, S)."""
        x = self.targets(images, seed)
        q = self.model.encoder(x)
        z = hard_sample(q, torch.Generator().manual_seed(seed)) if sample else posterior_mode(self.model, x)
        return {**self._latents(*z), "canvases": self.model.canvas(*z).numpy()}

    @torch.no_grad()
    def decode(self, latents: dict | None = None, canvas=None) -> dict[str, np.ndarray]:
        """The decoder's output of latents (a dict of z_id, z_loc, z_is) or of canvases (N, C, S, S) in
        [0, 1]: `means`, and `canvases`."""
        if (latents is None) == (canvas is None):
            raise ValueError("decode: give latents or a canvas, one of them")
        if canvas is None:
            canvas = self.canvas(latents)
        else:
            canvas = torch.as_tensor(np.asarray(canvas), dtype=torch.float32)
            side = self.grid.side
            if canvas.dim() != 4 or tuple(canvas.shape[1:]) != (self.channels, side, side):
                raise DataError(f"canvas: shape {tuple(canvas.shape)}; expected (N, {self.channels}, {side}, {side})")
        means = self.model.output.mean(self.model.decoder(canvas))
        return {"means": means.numpy(), "images": means.numpy(), "canvases": canvas.numpy()}

    @torch.no_grad()
    def log_likelihood(self, images, samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """-log p(x) bounded by importance sampling (Burda et al.) with S = `samples` posterior samples per
        image, nats per image (float64): the pipeline's evaluation, on these images, each scored on its own
        with the same seed (its number does not depend on the others given with it)."""
        samples = _default("evaluate", "nll_samples", 50) if samples is None else samples
        seed = _default("evaluate", "seed", 1234) if seed is None else seed
        x = self.targets(images, seed)
        return np.array([importance_sampled(self.model, xi[None], samples, seed=seed, progress=False)["nll_nats"][0]
                         for xi in x], dtype=np.float64)

    # --- parts, parses and edits --------------------------------------------------------------

    @property
    def bank(self) -> np.ndarray:
        """The part bank (M, C, K, K) in [0, 1]."""
        return self.model.bank.numpy()

    @torch.no_grad()
    def parse(self, images, epsilon: float | None = None) -> dict[str, np.ndarray]:
        """The heuristic parse (paper Algorithm 1) of each image with the model's bank: latents, canvases."""
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
        """The canvas (N, C, S, S) that latents draw, after checking their shapes and ranges."""
        z_id, z_loc, z_is = self.check_latents(latents)
        return self.model.canvas(z_id, z_loc, z_is)

    @torch.no_grad()
    def prior_log_prob(self, latents: dict) -> np.ndarray:
        """log p(z) under the model's prior, nats per sequence."""
        return self.model.prior.log_prob(*self.check_latents(latents))["total"].double().numpy()

    def check_latents(self, latents: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z_id, z_loc, z_is) tensors from a dict of (N, T) arrays; ValueError naming the key, the value
        and the range it must lie in."""
        steps, parts, cells = self.model.prior.cfg.steps, self.model.cfg.parts, self.grid.cells
        out = []
        for key, top in (("z_id", parts), ("z_loc", cells), ("z_is", 2)):
            if key not in latents:
                raise ValueError(f"latents: no {key!r} (expected z_id, z_loc and z_is, each (N, {steps}))")
            z = torch.as_tensor(np.asarray(latents[key]))
            if z.dim() == 1:
                z = z[None]
            if z.dim() != 2 or z.shape[1] != steps:
                raise ValueError(f"latents[{key!r}]: shape {tuple(z.shape)}, expected (N, {steps})")
            z = z.long()
            if len(z) and (z.min() < 0 or z.max() >= top):
                bad = int(z[(z < 0) | (z >= top)][0])
                raise ValueError(f"latents[{key!r}]: {bad} out of range: expected 0 to {top - 1}"
                                 + (f" (this bank has {parts} parts)" if key == "z_id" else ""))
            out.append(z)
        return out[0], out[1], out[2].bool()

    @staticmethod
    def _latents(z_id, z_loc, z_is) -> dict[str, np.ndarray]:
        return {"z_id": z_id.numpy().astype(np.int64), "z_loc": z_loc.numpy().astype(np.int64),
                "z_is": z_is.numpy().astype(bool)}


def load(path: str | Path | None = None) -> TrainedModel:
    """A trained NP-DRAW model from a checkpoint the pipeline wrote (a run's model/best.pt; default: the
    committed reference model).  A checkpoint of another kind is refused by name."""
    path = Path(path) if path is not None else REFERENCE_MODEL
    if not path.is_file():
        hint = " (the committed reference model: is this a clone of the repository?)" if path == REFERENCE_MODEL else ""
        raise CheckpointError(f"{path}: no such checkpoint{hint}; give a run's model/best.pt")
    kind = read_checkpoint(path).get("kind")
    if kind != NPDraw.kind:
        raise CheckpointError(f"{path}: a {kind} checkpoint; this needs an NP-DRAW model (kind npdraw): a run's "
                              f"model/best.pt of variant base or an ablation variant, not a baseline's")
    return TrainedModel(load_model(path, "cpu"), path)
