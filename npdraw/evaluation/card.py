"""The metric card of a feature network (method §14): does its FID order known cases correctly?

Scored exactly as a run's samples are (the same number of images, against the same cached statistics
of the test images, npdraw.evaluation.features.score), with precision and recall beside each FID:

- **the floor**: real held-out images, as many as a run generates, drawn several times (its spread;
  npdraw.evaluation.floor: reference_stats computes it, the card reads it);
- **degradations in steps**: independent pixel flips at rising rates; a Gaussian blur of rising width
  (then one Bernoulli draw per pixel, as binary samples are drawn); fewer classes (half of them, then
  one: mode dropping);
- **what a collapsed VAE samples**: the per-pixel mean of the training images, one Bernoulli draw per
  pixel;
- **random collages** of a part bank's parts, each cell drawn as often as the parser draws it in real
  images;
- real training images (seen by the feature network), for information.

The card passes when the floor is the lowest score of every case but the training images, every family
of degradations is monotone in its strength, and the collapsed stand-in and the one-class set score far
above the floor (FAR times its mean and more than FAR of its standard deviations above it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from npdraw.compute import seeds
from npdraw.data.binarize import as_float, fixed_targets
from npdraw.data.splits import strata
from npdraw.evaluation.features import FeatureExtractor, network_identity, score
from npdraw.evaluation.floor import held_out
from npdraw.parts.bank import build_bank
from npdraw.parts.canvas import Grid, render, to_canvas_space
from npdraw.parts.parser import parse_cells

FLIP_RATES = (0.01, 0.02, 0.05, 0.1, 0.2)      # share of pixels flipped
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0)             # Gaussian blur's standard deviation, pixels
FAR = 10.0                                     # "far above the floor": FAR x its mean and FAR sds above it
MONOTONE = ("pixel flips", "blur", "mode dropping")   # the families scored in steps of strength


@dataclass(frozen=True)
class Case:
    """One set of images the card scores: its family, its strength within the family (None: one case
    alone), a line saying what it is, and the images (float in [0, 1], (N, C, H, W))."""
    family: str
    strength: float | None
    what: str
    images: torch.Tensor


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of (N, C, H, W) images, kernel radius 3 sigma (at least 1), zero padding."""
    radius = max(1, int(np.ceil(3 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype)
    w = torch.exp(-k ** 2 / (2 * sigma ** 2))
    w = (w / w.sum()).view(1, 1, 1, -1).expand(x.shape[1], 1, 1, -1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0)), w, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius)), w.transpose(2, 3), groups=x.shape[1])


def collages(images_u8: np.ndarray, ds: dict, bank_cfg: dict, n: int, seed: int,
             generator: torch.Generator) -> torch.Tensor:
    """`n` canvases of random parts (N, C, S, S): a bank built from `images_u8` (npdraw.parts.bank, the
    dataset's K and M), each cell drawing a uniformly chosen part with the probability the parser draws
    in these images."""
    bank = torch.from_numpy(build_bank(images_u8, ds, bank_cfg, seed)[0])
    grid = Grid.for_dataset(ds)
    _, drew = parse_cells(to_canvas_space(images_u8[:2000], ds), bank, grid, 0.01)
    rate = float(drew.float().mean())
    z_is = torch.rand(n, grid.cells, generator=generator) < rate
    z_id = torch.randint(len(bank), (n, grid.cells), generator=generator)
    z_loc = torch.arange(grid.cells).expand(n, -1)
    return render(bank, z_id, z_loc, z_is, grid).clamp(0, 1)


def cases(arrays: dict, labels: np.ndarray, base: np.ndarray, n: int, binary: bool, ds: dict, bank_cfg: dict,
          seed: int) -> list[Case]:
    """The degraded, collapsed, mode-dropped and collage sets (module docstring), `n` images each.
    `arrays`: the prepared dataset; `labels`: the training images' class of each (the groups mode dropping
    keeps); `base`: real held-out images (uint8 (n, C, H, W), grey levels) the degradations start from."""
    g = torch.Generator().manual_seed(seeds.torch_seed(seed, "metric_card"))
    rng = seeds.rng(seed, "metric_card")
    draw = (lambda x: torch.bernoulli(x, generator=g)) if binary else (lambda x: x)
    grey = as_float(torch.from_numpy(np.asarray(base)))
    real = draw(grey)
    train = np.asarray(arrays["train_images"])
    out = []
    for rate in FLIP_RATES:
        flip = torch.rand(real.shape, generator=g) < rate
        other = 1 - real if binary else torch.rand(real.shape, generator=g)   # grey data: a random level
        flipped = torch.where(flip, other, real)
        out.append(Case("pixel flips", rate, f"{rate:.0%} of the pixels of real images flipped", flipped))
    for sigma in BLUR_SIGMAS:
        out.append(Case("blur", sigma, f"real images blurred (Gaussian, sigma {sigma:g} px)"
                                       + (", then one Bernoulli draw per pixel" if binary else ""),
                        draw(blur(grey, sigma).clamp(0, 1))))
    classes = np.unique(labels)
    for kept, what in ((classes[:max(1, len(classes) // 2)], "half of the classes"), (classes[:1], "one class")):
        pool = np.nonzero(np.isin(labels, kept))[0]
        idx = rng.permutation(pool)[:n] if len(pool) >= n else np.resize(rng.permutation(pool), n)
        out.append(Case("mode dropping", 1 - len(kept) / len(classes),
                        f"training images of {what} only ({len(kept)} of {len(classes)}"
                        f"{'; ' + str(len(pool)) + ' images, repeated' if len(pool) < n else ''})",
                        fixed_targets(torch.from_numpy(train[idx]), binary, seed)))
    mean = as_float(torch.from_numpy(train)).mean(0, keepdim=True).expand(n, -1, -1, -1)
    out.append(Case("collapsed", None, "the per-pixel mean of the training images, one Bernoulli draw per pixel "
                                       "(what a VAE with an unused latent samples)", draw(mean)))
    if ds["canvas_size"] == ds["image_size"]:
        parts = collages(train, ds, bank_cfg, n, seed, g)
        out.append(Case("part collages", None, f"random collages of a {ds['bank_size']}-part bank's "
                                               f"{ds['patch_size']}x{ds['patch_size']} parts", draw(parts)))
    idx = rng.choice(len(train), n, replace=False) if len(train) >= n else np.resize(np.arange(len(train)), n)
    out.append(Case("training images", None, "real training images (seen by the feature network)",
                    fixed_targets(torch.from_numpy(train[np.sort(idx)]), binary, seed + 2)))
    return out


def checks(floor: dict, scored: list[dict]) -> list[dict]:
    """The card's checks on the floor {mean, sd} and the scored cases [{family, strength, fid}]."""
    out = []
    judged = [c for c in scored if c["family"] != "training images"]
    low = min(judged, key=lambda c: c["fid"])
    out.append({"check": "the floor is the lowest score", "passes": low["fid"] > floor["mean"],
                "detail": f"floor {floor['mean']:.3f}; lowest other: {low['family']}"
                          f"{'' if low['strength'] is None else ' ' + format(low['strength'], 'g')} {low['fid']:.3f}"})
    for family in MONOTONE:
        steps = sorted((c for c in scored if c["family"] == family), key=lambda c: c["strength"])
        fids = [c["fid"] for c in steps]
        out.append({"check": f"{family}: monotone in strength", "passes": all(b > a for a, b in zip(fids, fids[1:])),
                    "detail": ", ".join(f"{c['strength']:g}: {c['fid']:.2f}" for c in steps)})
    bar = max(FAR * floor["mean"], floor["mean"] + FAR * floor["sd"])
    for family, strength in (("collapsed", None), ("mode dropping", max(c["strength"] for c in scored
                                                                          if c["family"] == "mode dropping"))):
        case = next(c for c in scored if c["family"] == family and c["strength"] == strength)
        out.append({"check": f"{family}{' (one class)' if strength is not None else ''} far above the floor",
                    "passes": case["fid"] > bar, "detail": f"{case['fid']:.2f} against {bar:.2f} "
                                                          f"(max of {FAR:g} x floor, floor + {FAR:g} sd)"})
    return out


def metric_card(feature, reference: dict, real: dict, the_cases: list[Case], kid_subset: int, seed: int) -> dict:
    """Score every case against the reference statistics and run the checks against the floor `real`
    (floor()); {floor, cases: [{family, strength, what, fid, kid, precision, recall}], checks, passes}."""
    scored = []
    for case in the_cases:
        s = score(feature, reference, case.images, kid_subset, seed=seed)
        scored.append({"family": case.family, "strength": case.strength, "what": case.what, "fid": s["fid"],
                       "kid": s["kid"], "precision": s["precision"], "recall": s["recall"]})
    results = checks({"mean": real["fid"], "sd": real["fid_sd"]}, scored)
    return {"floor": real, "cases": scored, "checks": results, "passes": all(c["passes"] for c in results)}


def dataset_card(arrays: dict, test: np.ndarray, cfg, classifier, reference: dict
                 ) -> tuple[dict, list[Case], torch.Tensor]:
    """The metric card of `classifier` (the dataset's domain network) on the run configuration `cfg` (its
    sample counts, seed, bank settings), against the cached `reference` statistics of the test images
    `test`: (the card with the network's identity and the counts, the cases, the floor's first draw as
    evaluation images)."""
    ev, binary = cfg.evaluate, cfg.ds.output == "bernoulli"
    base = held_out(arrays, test, ev.samples, 1, seeds.rng(ev.seed, "metric_card"))[0][0]   # the floor's first draw
    # Mode dropping keeps fewer of the coarsest groups: MNIST's digits, Omniglot's alphabets.
    the_cases = cases(arrays, strata(arrays), base, ev.samples, binary, dict(cfg.ds), dict(cfg.bank), ev.seed)
    scored = metric_card(FeatureExtractor(classifier), reference["domain"], reference["real"]["domain"], the_cases,
                         ev.kid_subset_size, ev.seed)
    card = {"network": network_identity(classifier), "samples": ev.samples, "reference_images": reference["images"],
            **scored}
    return card, the_cases, fixed_targets(torch.from_numpy(base), binary, ev.seed + 1)

