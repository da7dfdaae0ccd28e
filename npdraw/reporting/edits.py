"""The latent-editing figure of a trained NP-DRAW model (paper Fig. 4): the edit_latents stage and the
demo (npdraw.reporting.demo) draw it with this function, so the two agree."""

from __future__ import annotations

import torch
from PIL import Image

from npdraw.evaluation.editing import paste_region
from npdraw.reporting.figures import upscale
from npdraw.reporting.viz import image_grid, titled


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
