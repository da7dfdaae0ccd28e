"""Latent-space editing (paper Fig. 4): paste a region of one image's canvas onto another's."""

from __future__ import annotations

import torch

from npdraw.models.npdraw import NPDraw


@torch.no_grad()
def posterior_mode(model: NPDraw, x: torch.Tensor):
    """The most probable latents under q(z|x): argmax part and cell, draw if q(z_is) > 1/2."""
    q_id, q_loc, q_is = model.encoder(x)
    return q_id.argmax(-1), q_loc.argmax(-1), q_is > 0


@torch.no_grad()
def paste_region(model: NPDraw, xa: torch.Tensor, xb: torch.Tensor, region: tuple[int, int, int, int]) -> dict:
    """Encode A and B, copy canvas B's pixels rows r0:r1, cols c0:c1 into canvas A, decode.

    region is in canvas pixels.  Returns canvases and decoded means, each (B, C, ., .).
    """
    r0, r1, c0, c1 = region
    side = model.grid.side
    if not (0 <= r0 < r1 <= side and 0 <= c0 < c1 <= side):
        raise ValueError(f"region {region}: expected 0 <= r0 < r1 <= {side} and 0 <= c0 < c1 <= {side}")
    canvas_a, canvas_b = model.canvas(*posterior_mode(model, xa)), model.canvas(*posterior_mode(model, xb))
    edited = canvas_a.clone()
    edited[..., r0:r1, c0:c1] = canvas_b[..., r0:r1, c0:c1]
    decode = lambda c: model.output.mean(model.decoder(c))  # noqa: E731
    return {"canvas_a": canvas_a, "canvas_b": canvas_b, "edited": edited,
            "decoded_a": decode(canvas_a), "decoded_b": decode(canvas_b), "decoded_edited": decode(edited)}
