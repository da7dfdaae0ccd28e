"""The two pictures a trained NP-DRAW model is shown by: sampled canvases above the images decoded from
them (paper Fig. 5) and the latent-editing figure (paper Fig. 4).  The evaluate and edit_latents stages
and the demo (npdraw.reporting.demo) draw them with these functions, so the three agree."""

from __future__ import annotations

import torch
from PIL import Image

from npdraw.evaluation.editing import paste_region
from npdraw.reporting.viz import image_grid, titled


def upscale(canvases: torch.Tensor, image_size: int) -> torch.Tensor:
    """(N, C, s, s) canvases -> (N, C, image_size, image_size), nearest pixel, to sit beside images."""
    if canvases.shape[-1] == image_size:
        return canvases
    return torch.nn.functional.interpolate(canvases, size=image_size)


def canvases_and_samples(gen: dict, image_size: int, binary: bool, columns: int = 12,
                         system: str = "npdraw") -> Image.Image:
    """Fig. 5 from `generate`'s output: a row of sampled canvases (N, C, s, s), for binary data the
    decoder's Bernoulli means, and the sampled images (N, C, H, W).  A model without a canvas (the
    PixelVAE) gets two rows of samples instead.  (For colour data the means are the samples' own
    rule, so they get no row of their own.)"""
    if gen["canvases"] is None:
        return titled(image_grid(gen["images"][:2 * columns], ncol=columns, scale=3),
                      f"{system}: samples (this model has no canvas)")
    rows = [upscale(gen["canvases"][:columns], image_size), gen["images"][:columns]]
    title = "sampled canvases (top) and their decoded images (bottom)"
    if binary and gen["means"] is not None:   # binary data: the decoder's Bernoulli means above its draws
        rows.insert(1, gen["means"][:columns])
        title = "sampled canvases (top), decoder's Bernoulli means (middle), Bernoulli draws (bottom)"
    return titled(image_grid(torch.cat(rows), ncol=columns, scale=3), title)


def latent_edit(model, x: torch.Tensor, region: tuple[int, int, int, int] | None = None) -> Image.Image:
    """Fig. 4 from test images x (2P, C, H, W), pairs (A, B) = (x[2i], x[2i + 1]): canvas B's pixels in
    `region` (rows r0:r1, columns c0:c1 of the canvas; default its right half) pasted onto canvas A
    and decoded.  One row per pair: A | decoded A | B | canvas A | canvas B | edited canvas | decoded
    edit.  Raises ValueError for a region outside the canvas."""
    if region is None:
        side = model.grid.side
        region = (0, side, side // 2, side)
    out = paste_region(model, x[0::2], x[1::2], region)
    size = x.shape[-1]
    columns = [x[0::2], out["decoded_a"], x[1::2], upscale(out["canvas_a"], size), upscale(out["canvas_b"], size),
               upscale(out["edited"], size), out["decoded_edited"]]
    grid = image_grid(torch.stack(columns, 1).flatten(0, 1), ncol=len(columns), scale=3)
    return titled(grid, f"A | dec A | B | canvas A | canvas B | A + B[{region}] | decoded")
