"""Three estimates of NP-DRAW's test NLL from the same posterior samples, to tell where the gap between
this pipeline's NLL and the paper's comes from (results/findings/nll_gap/).

For S hard samples z_s ~ q(z|x) of one image, with log p(z_s) from the prior's teacher-forced pass and
KL_s the analytic per-step KL of q against the prior's conditionals given the sampled history
(npdraw.models.npdraw.step_kl, what training minimises):

  valid        -log (1/S) sum_s exp(log p(x|z_s) + log p(z_s) - log q(z_s|x))
               the importance-sampled bound (Burda et al.), what the evaluate stage reports;
  authors      -log (1/S) sum_s exp(log p(x|z_s) - KL_s)
               the authors' code's `test_loss`: the log-mean-exp of S single-sample ELBOs with the
               analytic KL, which is not an importance-sampled bound for S > 1;
  neg_elbo     (1/S) sum_s (-log p(x|z_s) + KL_s)
               the negative ELBO (BCE + analytic KL), averaged over the samples.

All in float64, nats per image.  Shapes: B images, T steps, S samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm

from npdraw.compute.precision import autocast
from npdraw.models.npdraw import NPDraw, hard_sample, parse_cross_entropy, step_kl

FORMS = ("valid", "authors", "neg_elbo")


@torch.no_grad()
def sample_terms(model: NPDraw, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One hard sample z ~ q(z|x) of each image: log p(x|z), log p(z), log q(z|x) and the analytic KL, (B,)."""
    q = model.encoder(x)
    z = hard_sample(q, generator)
    log_px = model.output.log_prob(model.decoder(model.canvas(*z)), x)
    p = model.prior.logits(*z)
    id_logits, loc_logits, is_logits = p
    drawn = z[2].to(id_logits.dtype)
    log_pz = (-torch.nn.functional.cross_entropy(id_logits.transpose(1, 2), z[0], reduction="none") * drawn
              - torch.nn.functional.cross_entropy(loc_logits.transpose(1, 2), z[1], reduction="none") * drawn
              - torch.nn.functional.binary_cross_entropy_with_logits(is_logits, drawn, reduction="none")).sum(1)
    return {"log_px": log_px.double(), "log_pz": log_pz.double(), "log_qz": -parse_cross_entropy(q, *z).double(),
            "kl": step_kl(q, p).sum(1).double()}


@torch.no_grad()
def estimates(model: NPDraw, x: torch.Tensor, samples: int, seed: int = 0, batch_size: int = 100,
              precision: str = "fp32", progress: bool = True) -> dict[str, np.ndarray]:
    """Per-image estimates (FORMS) from the same `samples` samples of each image, (N,) float64 each; one
    seeded generator draws them in order."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {form: [] for form in FORMS}
    for start in tqdm(range(0, len(x), batch_size), desc=f"estimators (S={samples})", mininterval=5,
                      disable=not progress):
        xb = x[start:start + batch_size]
        terms: dict[str, list] = {"log_w": [], "elbo": []}
        for _ in range(samples):
            with autocast(x.device, precision):
                t = sample_terms(model, xb, g)
            terms["log_w"].append(t["log_px"] + t["log_pz"] - t["log_qz"])
            terms["elbo"].append(t["log_px"] - t["kl"])
        log_w, elbo = torch.stack(terms["log_w"]), torch.stack(terms["elbo"])     # (S, B)
        out["valid"].append(-(torch.logsumexp(log_w, 0) - math.log(samples)))
        out["authors"].append(-(torch.logsumexp(elbo, 0) - math.log(samples)))
        out["neg_elbo"].append(-elbo.mean(0))
    return {form: torch.cat(v).cpu().numpy() for form, v in out.items()}
