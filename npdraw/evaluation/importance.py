"""Importance-sampled NLL (Burda et al., method §10) and the bounds reported with it.

For each image, S hard samples z_s ~ q(z|x) give log-weights
  w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x),
with log p(z) from the prior's teacher-forced pass and log q at the sampled
discrete z.  NLL = -(logsumexp_s w_s - log S), in float64: an upper bound on
-log p(x) that tightens as S grows; S = 1 gives the ELBO's single-sample estimate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from npdraw.artifacts.contracts import ArrayContract, Field
from npdraw.artifacts.io import read_arrays, write_npz
from npdraw.compute.precision import autocast

# eval/samples.npz: N generated images as uint8 levels, and (NP-DRAW) the sampled canvases they
# were decoded from; the PixelVAE has no canvas.
SAMPLES = ArrayContract("samples file", "evaluate", (
    Field("images", "uint8", ("N", "C", "H", "H")),
    Field("canvases", "uint8", ("N", "C", "S", "S"), optional=True),
))


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/S) sum_s exp(w_s) per image: log_w (S, B) -> (B,), float64."""
    log_w = log_w.double()
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


@torch.no_grad()
def importance_sampled(model, x: torch.Tensor, samples: int, batch_size: int = 100, seed: int = 0,
                       progress: bool = True, precision: str = "fp32", compile: bool = False,
                       chunk: int = 50, per_pass: int = 1) -> dict[str, np.ndarray]:
    """Per-image NLL, ELBO, BCE and KL estimates (nats, float64) from `samples` hard samples each;
    `precision` and `compile` of the scoring passes (npdraw.compute.precision).

    BCE = -E_q[log p(x|z)] and KL = E_q[log q(z|x) - log p(z)] are Monte Carlo
    averages over the same samples; ELBO = -(BCE + KL).  The samples are scored `chunk` at a time into
    a running log-sum-exp and running sums, so memory stays flat however large S is (the PixelVAE's
    5,000); one generator draws them in the same order whatever the chunk.  `per_pass` samples of a
    batch are scored as one batch (at most `chunk`: evaluate.samples_per_pass).
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = {"nll_nats": [], "elbo_nats": [], "bce_nats": [], "kl_nats": []}
    for s in tqdm(range(0, len(x), batch_size), desc=f"NLL (S={samples})", mininterval=5, disable=not progress):
        xb = x[s:s + batch_size]
        lse, sums = None, {"log_px": 0.0, "kl": 0.0, "log_w": 0.0}
        for first in range(0, samples, chunk):
            with autocast(x.device, precision):   # the log-weights come back fp32 (npdraw.compute.precision)
                w = model.log_weights(xb, xb, min(chunk, samples - first), g, compile, min(per_pass, chunk))
            log_px, log_pz, log_qz = (w[k].double() for k in ("log_px", "log_pz", "log_qz"))
            log_w = log_px + log_pz - log_qz                                              # (chunk, B)
            part = torch.logsumexp(log_w, dim=0)
            lse = part if lse is None else torch.logaddexp(lse, part)
            sums = {"log_px": sums["log_px"] + log_px.sum(0), "kl": sums["kl"] + (log_qz - log_pz).sum(0),
                    "log_w": sums["log_w"] + log_w.sum(0)}
        out["nll_nats"].append(-(lse - math.log(samples)))
        out["bce_nats"].append(-sums["log_px"] / samples)
        out["kl_nats"].append(sums["kl"] / samples)
        out["elbo_nats"].append(sums["log_w"] / samples)
    return {k: torch.cat(v).cpu().numpy() for k, v in out.items()}


def nll_summary(est: dict, dims: int, binary: bool) -> dict:
    """Means of the per-image estimates; bits per dimension for the colour datasets."""
    out = {k: float(v.mean()) for k, v in est.items()}
    n = len(est["nll_nats"])
    out["nll_stderr_nats"] = float(est["nll_nats"].std(ddof=1) / math.sqrt(n)) if n > 1 else None
    if not binary:
        out["bits_per_dim"] = out["nll_nats"] / (dims * math.log(2))
    return out


@torch.no_grad()
def generate(model, n: int, seed: int, batch_size: int = 500, precision: str = "fp32",
             colour: str = "mean", progress: bool = True) -> dict[str, torch.Tensor | None]:
    """n images from `model.sample` (NP-DRAW: prior -> canvas -> decoder output, `colour` the rule for
    colour data; PixelVAE: z -> ancestral PixelCNN), in batches, with one seeded generator; also the
    sampled canvases and the decoder's means, None for models without them."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {"canvases": [], "images": [], "means": []}
    for s in tqdm(range(0, n, batch_size), desc="sampling", mininterval=5, disable=not progress):
        with autocast(next(model.parameters()).device, precision):
            drawn = model.sample(min(batch_size, n - s), g, colour)
        for key, value in drawn.items():
            if value is not None:   # fp32 pictures, whatever the precision of the pass
                out[key].append(value.cpu().float())
    return {key: torch.cat(parts) if parts else None for key, parts in out.items()}


def write_samples(path: str | Path, gen: dict, ds) -> None:
    """The generated images (and canvases) of `generate` as uint8 levels, checked against SAMPLES."""
    to_u8 = lambda t: (t * 255).round().to(torch.uint8).cpu().numpy()  # noqa: E731
    drawn = {"images": to_u8(gen["images"])}
    if gen["canvases"] is not None:
        drawn["canvases"] = to_u8(gen["canvases"])
    SAMPLES.check(path, drawn, C=ds.channels, H=ds.image_size, S=ds.canvas_size)
    write_npz(path, **drawn)


def load_samples(path: str | Path, ds) -> dict[str, np.ndarray]:
    """A run's generated images (N, C, H, H) and canvases (N, C, S, S), uint8, checked against SAMPLES."""
    drawn = read_arrays(path, "samples file", "evaluate")
    SAMPLES.check(path, drawn, C=ds.channels, H=ds.image_size, S=ds.canvas_size)
    return drawn
