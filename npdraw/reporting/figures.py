"""Figures of several image sets: sampled canvases above the images decoded from them (paper Fig. 5: the
evaluate stage and the demo, npdraw.reporting.demo, draw it with this function, so the two agree; a model
without a canvas gets its samples alone), and a feature network's metric card."""

from __future__ import annotations

import torch
from PIL import Image

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

def metric_card_picture(the_cases: list, scored: dict, floor_images: torch.Tensor, columns: int = 12):
    """A metric card (npdraw.evaluation.card) as a picture: one row of images per case (`the_cases`, the
    floor's first), each captioned with its FID, precision and recall."""
    f = scored["floor"]
    rows = [titled(image_grid(floor_images[:columns], columns, scale=2),
                   f"floor (real held-out images): FID {f['fid']:.2f} +- {f['fid_sd']:.2f}, "
                   f"precision {f['precision']:.2f}, recall {f['recall']:.2f}")]
    for case, s in zip(the_cases, scored["cases"]):
        name = case.family + ("" if case.strength is None else f" {case.strength:g}")
        rows.append(titled(image_grid(case.images[:columns], columns, scale=2),
                           f"{name}: FID {s['fid']:.2f}, precision {s['precision']:.2f}, recall {s['recall']:.2f}"))
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    return out


