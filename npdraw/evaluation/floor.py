"""The floor a model's FID is read against (method §14): real held-out images scored exactly as a run's
samples are, drawn several times for its spread.  A model whose FID lies below the floor by more than that
spread is one the features cannot rank (npdraw.reporting.verdicts flags it).
"""

from __future__ import annotations

import numpy as np
import torch

from npdraw.compute import seeds
from npdraw.data.binarize import fixed_targets
from npdraw.evaluation.features import FeatureExtractor, network_identity, reference_state, score

FLOOR_DRAWS = 5   # draws of real held-out images for the floor's spread


def held_out(arrays: dict, reference: np.ndarray, n: int, draws: int, rng: np.random.Generator
             ) -> tuple[list[np.ndarray], str]:
    """`draws` sets of `n` real images (uint8 (n, C, H, W)) that are not in the reference statistics: test
    images left out of them (the feature network never saw them: it learns training images), topped up
    with training images where too few are left; and a line saying where they came from."""
    test, train = arrays["test_images"], arrays["train_images"]
    pool = np.setdiff1d(np.arange(len(test)), reference)
    images = np.asarray(test[pool])
    source = f"real test images not in the reference statistics ({len(pool):,} of them)"
    if len(pool) < n:
        extra = np.sort(rng.choice(len(train), n - len(pool), replace=False))
        images = np.concatenate([images, np.asarray(train[extra])])
        source += f", topped up with {len(extra):,} training images"
    return [images[np.sort(rng.choice(len(images), n, replace=False))] for _ in range(draws)], source


def floor(feature, reference: dict, arrays: dict, reference_idx: np.ndarray, n: int, binary: bool, kid_subset: int,
          seed: int, weights=None) -> dict:
    """The floor: FID, KID, precision and recall of FLOOR_DRAWS sets of `n` real held-out images (held_out)
    against the `reference` statistics (of the test images `reference_idx`), each binarised as test
    images are; the mean of each, the FIDs' standard deviation and every draw's FID."""
    draws, source = held_out(arrays, reference_idx, n, FLOOR_DRAWS, seeds.rng(seed, "metric_card"))
    scores = [score(feature, reference, fixed_targets(torch.from_numpy(x), binary, seed + 1 + i), kid_subset,
                    weights, seed=seed) for i, x in enumerate(draws)]
    fids = [s["fid"] for s in scores]
    return {"images": n, "draws": len(draws), "source": source, "fid": float(np.mean(fids)),
            "fid_sd": float(np.std(fids, ddof=1)), "fids": fids,
            **{k: float(np.mean([s[k] for s in scores])) for k in ("kid", "precision", "recall")}}


# The keys a metrics file gives each feature network's scores (npdraw.reporting.tables.domain_columns reads them).
KEYS = {"domain": ("fid_domain", "kid_domain", "precision_domain", "recall_domain"),
        "inception": ("fid", "kid", "precision", "recall")}


def sample_quality(reference: dict, classifier, images: torch.Tensor, kid_subset: int, seed: int,
                   inception_weights=None) -> dict:
    """Every score of generated `images` (float [0, 1]) against the cached reference statistics, per feature
    network the statistics hold (the domain one: `classifier`; Inception's: `inception_weights`): FID, KID and
    its spread, precision and recall, and the floor (real held-out images scored the same way) with its spread
    and whether the FID lies below it by more than that spread (then the features cannot rank the model)."""
    out = {"feature_network": network_identity(classifier)}
    for name, (fid, kid, precision, recall) in KEYS.items():
        if reference[name] is None:
            out.update(dict.fromkeys((fid, kid, precision, recall)))
            continue
        feature = FeatureExtractor(classifier) if name == "domain" else 2048
        s = score(feature, reference[name], images, kid_subset, inception_weights if name == "inception" else None,
                  seed=seed)
        floor = reference["real"][name]
        out.update({fid: s["fid"], kid: s["kid"], f"{kid}_std": s["kid_std"], precision: s["precision"],
                    recall: s["recall"], f"{fid}_floor": floor["fid"], f"{fid}_floor_sd": floor["fid_sd"],
                    f"{fid}_below_floor": bool(s["fid"] < floor["fid"] - floor["fid_sd"])})
    return out


def reference_statistics(arrays: dict, test: np.ndarray, cfg, classifier, inception_weights=None) -> dict:
    """What reference_stats caches for the run configuration `cfg`: the test images `test` (indices, binarised
    once with the evaluation's seed) as torchmetrics' states in each feature network available (domain:
    `classifier`; Inception: `inception_weights`), the domain network's identity, and under `real` the floor
    of each (floor())."""
    ev, binary = cfg.evaluate, cfg.ds.output == "bernoulli"
    x = fixed_targets(torch.from_numpy(np.asarray(arrays["test_images"][test])), binary, ev.seed)
    features = {"domain": None if classifier is None else FeatureExtractor(classifier),
                "inception": None if inception_weights is None else 2048}
    stats = {"images": len(x), "network": network_identity(classifier)}
    stats.update({name: None if f is None else reference_state(f, x, ev.kid_subset_size, inception_weights)
                  for name, f in features.items()})
    stats["real"] = {"images": ev.samples, **{
        name: None if f is None else floor(f, stats[name], arrays, test, ev.samples, binary, ev.kid_subset_size,
                                           ev.seed, inception_weights)
        for name, f in features.items()}}
    return stats

