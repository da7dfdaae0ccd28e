"""Feature networks for FID / KID (method §10), and statistics computed with torchmetrics.

Two extractors:
  * the standard one: torch-fidelity's TF-compatible InceptionV3 (pool3, 2048-d),
    used through torchmetrics when torch-fidelity (+ torchvision) is installed and
    its weights file is given; reported as `fid` / `kid`;
  * a domain one that always works offline: a small CNN classifier the pipeline
    trains on the dataset's own labels; its penultimate layer is the feature;
    reported as `fid_domain` / `kid_domain`.
Reference statistics of the test images are computed once per dataset and
extractor and cached (torchmetrics' own state tensors), not per model.

Both the classifier and the statistics belong to a dataset and profile, not to a
run: the classifier learns from the full training split with seed 0 whatever the
run's split, seed or variant, so that a low-data run (say MNIST digits {0, 1})
is scored with the same features, on the same test images, as every other run
and the FIDs of a low-data curve can be compared.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from npdraw.artifacts.contracts import ArrayContract, CheckpointContract, Field
from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import read_checkpoint, save_torch

log = logging.getLogger(__name__)
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"

# reference/classifier.pt: the classifier's settings (channels, classes, width, num_features) and
# weights, or cfg None with the reason when the dataset has no labels; the dataset it learned.
CLASSIFIER_CHECKPOINT = CheckpointContract("classifier", "train_classifier", ("cfg", "state_dict", "dataset"))
# reference/stats.pt: torchmetrics' real-image states of the test images per feature network
# (None where unavailable), the number of images, the dataset and profile they belong to, and under
# `real` the FID / KID of real held-out images against them (what a perfect model would score).
REFERENCE_CHECKPOINT = CheckpointContract("reference_stats", "reference_stats",
                                          ("images", "domain", "inception", "real", "dataset", "profile"))
# One feature network's statistics: F-dimensional features of n reference images.
REFERENCE_STATE = ArrayContract("reference statistics", "reference_stats", (
    Field("fid_sum", "float", ("F",)),
    Field("fid_cov_sum", "float", ("F", "F")),
    Field("fid_n", "int", ()),
    Field("kid_features", "float", ("n", "F")),
))


class DomainClassifier(nn.Module):
    """A small CNN: images in [0, 1] (B, C, H, W) -> class logits; `features` is the penultimate layer
    divided by `feature_scale`, the root mean square of one feature over the classifier's own
    validation images (set after training, npdraw.training.classifier): a domain FID is then in units
    of that spread whatever the classifier's width or dataset, and comparable with the FID of real
    held-out images (reference_stats)."""

    def __init__(self, channels: int, classes: int, width: int = 32, num_features: int = 128,
                 feature_scale: float = 1.0):
        super().__init__()
        self.cfg = {"channels": channels, "classes": classes, "width": width, "num_features": num_features,
                    "feature_scale": feature_scale}
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(channels, w, 3, 1, 1), nn.ReLU(), nn.Conv2d(w, w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, 1, 1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * w * 16, num_features), nn.ReLU())
        self.head = nn.Linear(num_features, classes)
        self.num_features = num_features  # what torchmetrics reads to size its statistics

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) / self.cfg["feature_scale"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))   # logits from the unscaled features the head was trained on


class FeatureExtractor(nn.Module):
    """What torchmetrics calls: float images in [0, 1] -> (B, F) features (grey replicated as needed)."""

    def __init__(self, classifier: DomainClassifier):
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = classifier.num_features

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x.float())


def save_classifier(path: Path, model: DomainClassifier | None, extra: dict, dataset: str) -> None:
    """The classifier's state, or (model None) a record that the dataset has none, with the reason."""
    cfg, state = (None, None) if model is None else (model.cfg, model.state_dict())
    save_torch(path, {"kind": CLASSIFIER_CHECKPOINT.kind, "dataset": dataset, "cfg": cfg, "state_dict": state,
                      **extra})


def load_classifier(path: str | Path, cfg=None) -> DomainClassifier | None:
    """The trained domain classifier; None when its dataset has no labels (the checkpoint says why).
    With a run's `cfg`: refused unless it learned the run's dataset."""
    ckpt = read_checkpoint(path)
    expect = {"dataset": cfg.dataset} if cfg is not None else None
    CLASSIFIER_CHECKPOINT.check(path, ckpt, expect, found_config=ckpt, what=f"this run ({cfg.dataset})"
                                if cfg is not None else "")
    if ckpt["cfg"] is None:
        return None
    with CLASSIFIER_CHECKPOINT.rebuilding(path):
        c = ckpt["cfg"]
        model = DomainClassifier(c["channels"], c["classes"], c["width"], c["num_features"], c["feature_scale"])
        model.load_state_dict(ckpt["state_dict"])
    model.valid_accuracy = ckpt.get("valid_accuracy")   # reported beside every FID on its features
    return model.eval()


def save_reference(path: str | Path, stats: dict, cfg) -> None:
    """Reference statistics of `cfg`'s dataset and profile: {images, domain, inception} (see
    reference_state) with their kind, dataset and profile."""
    save_torch(path, {"kind": REFERENCE_CHECKPOINT.kind, "dataset": cfg.dataset, "profile": cfg.profile, **stats})


def load_reference(path: str | Path, cfg, classifier: DomainClassifier | None) -> dict:
    """The cached statistics the run's samples are scored against: of the run's dataset and profile,
    finite, and (domain) with features of the size `classifier` produces (2,048 for Inception)."""
    ref = read_checkpoint(path, weights_only=False)
    REFERENCE_CHECKPOINT.check(path, ref, {"dataset": cfg.dataset, "profile": cfg.profile}, found_config=ref,
                               what=f"this run ({cfg.dataset}, profile {cfg.profile!r})")
    for name, width in (("domain", None if classifier is None else classifier.num_features), ("inception", 2048)):
        state = ref[name]
        if state is None:
            continue
        if not isinstance(state, dict):
            raise REFERENCE_CHECKPOINT.fail(path, f"'{name}' is a {type(state).__name__}, expected a dict of "
                                                  f"{', '.join(f.name for f in REFERENCE_STATE.fields)}")
        dims = REFERENCE_STATE.check(f"{path} ['{name}']", state, **({} if width is None else {"F": width}))
        if dims["n"] < 2:
            raise REFERENCE_STATE.fail(path, f"'{name}' statistics of {dims['n']} image(s), expected at least 2")
    real = ref["real"]
    if not (isinstance(real, dict) and isinstance(real.get("images"), int) and
            all(real.get(k) is None or isinstance(real[k], dict) and {"fid", "kid"} <= set(real[k])
                for k in ("domain", "inception"))):
        raise REFERENCE_CHECKPOINT.fail(path, "'real' is not the FID / KID of real images ({images, domain, "
                                              "inception}); rerun reference_stats")
    if ref["domain"] is not None and classifier is None:
        raise REFERENCE_CHECKPOINT.fail(path, "domain statistics, but the run's classifier checkpoint has no "
                                              "network (its dataset has no labels): statistics of another dataset")
    return ref


def inception_extractor(weights: str | None, required: bool):
    """torch-fidelity's InceptionV3 through torchmetrics, or None (with one log line) when unavailable.

    required=True turns unavailability into an error that says how to provide it.
    """
    problem = None
    if importlib.util.find_spec("torch_fidelity") is None:
        problem = ("torch-fidelity is not installed (pip install -e .[inception]; it needs a torchvision "
                   "build matching the installed torch)")
    elif not weights or not Path(weights).is_file():
        problem = (f"the Inception weights file is not available (evaluate.inception_weights = {weights!r}); "
                   f"download {INCEPTION_WEIGHTS} from torch-fidelity's v0.2.0 release and give its path")
    if problem is None:
        try:
            FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights)
        except Exception as err:  # torchvision / weights mismatch surface here
            problem = f"torch-fidelity's Inception could not be built ({err})"
    if problem:
        if required:
            raise ParamsError(f"evaluate.inception = 'require': {problem}")
        log.info("standard Inception FID/KID skipped: %s", problem)
        return None
    return weights


def _metrics(feature, kid_subset: int, weights=None):
    kwargs = {} if isinstance(feature, nn.Module) else {"feature_extractor_weights_path": weights}
    fid = FrechetInceptionDistance(feature=feature, reset_real_features=False, normalize=True, **kwargs)
    with warnings.catch_warnings():  # KID keeps every feature vector: intended, the sets are bounded by params
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=feature, reset_real_features=False, normalize=True,
                                      subset_size=kid_subset, **kwargs)
    return fid, kid


def to_rgb_if_inception(x: torch.Tensor, inception: bool) -> torch.Tensor:
    """Grey images are replicated to 3 channels for Inception (method §10)."""
    return x.expand(-1, 3, -1, -1) if inception and x.shape[1] == 1 else x


def reference_state(feature, images: torch.Tensor, kid_subset: int, weights=None, batch_size: int = 500) -> dict:
    """torchmetrics' real-image states for `images` (float [0, 1]): the cached reference statistics."""
    fid, kid = _metrics(feature, kid_subset, weights)
    inception = not isinstance(feature, nn.Module)
    for s in range(0, len(images), batch_size):
        batch = to_rgb_if_inception(images[s:s + batch_size], inception)
        fid.update(batch, real=True)
        kid.update(batch, real=True)
    return {"fid_sum": fid.real_features_sum, "fid_cov_sum": fid.real_features_cov_sum,
            "fid_n": fid.real_features_num_samples, "kid_features": torch.cat(kid.real_features)}


class FIDScore:
    """FID of sets of images against one fixed set of real images whose features are taken once (the
    validation images, for choosing the checkpoint): feature a module (domain features) or 2048
    (torch-fidelity's Inception, with its `weights`)."""

    def __init__(self, feature, real: torch.Tensor, weights=None, batch_size: int = 500):
        self.inception, self.batch_size = not isinstance(feature, nn.Module), batch_size
        kwargs = {"feature_extractor_weights_path": weights} if self.inception else {}
        self.fid = FrechetInceptionDistance(feature=feature, reset_real_features=False, normalize=True, **kwargs)
        self._update(real, real=True)

    def _update(self, images: torch.Tensor, real: bool) -> None:
        for s in range(0, len(images), self.batch_size):
            self.fid.update(to_rgb_if_inception(images[s:s + self.batch_size].cpu().float(), self.inception), real=real)

    def __call__(self, images: torch.Tensor) -> float:
        """FID of `images` (float [0, 1], (N, C, H, W)) against the real images."""
        self.fid.reset()   # the fake features only: reset_real_features=False keeps the real ones
        self._update(images, real=False)
        return float(self.fid.compute())


def score(feature, reference: dict, images: torch.Tensor, kid_subset: int, weights=None,
          batch_size: int = 500, seed: int = 0) -> dict[str, float]:
    """FID and KID (mean, std) of `images` against the cached reference statistics; KID's random
    subsets are drawn with `seed` (torchmetrics draws them from the global torch generator)."""
    n = min(len(images), len(reference["kid_features"]))
    fid, kid = _metrics(feature, min(kid_subset, n), weights)
    fid.real_features_sum, fid.real_features_cov_sum = reference["fid_sum"], reference["fid_cov_sum"]
    fid.real_features_num_samples = reference["fid_n"]
    kid.real_features = [reference["kid_features"]]
    inception = not isinstance(feature, nn.Module)
    for s in range(0, len(images), batch_size):
        batch = to_rgb_if_inception(images[s:s + batch_size], inception)
        fid.update(batch, real=False)
        kid.update(batch, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
