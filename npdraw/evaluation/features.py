"""Feature networks for FID / KID and precision / recall (method §10, 14), and statistics computed with
torchmetrics.

Two extractors:
  * the standard one: torch-fidelity's TF-compatible InceptionV3 (pool3, 2048-d),
    used through torchmetrics when torch-fidelity (+ torchvision) is installed and
    its weights file is given; reported as `fid` / `kid`;
  * a domain one that always works offline: a small CNN classifier trained on the dataset's own labels
    (MNIST's digits, Omniglot's 1,623 characters); its penultimate layer is the feature; reported as
    `fid_domain` / `kid_domain`, with precision and recall in the same features.
Reference statistics of the test images are computed once per dataset and profile and cached
(torchmetrics' own state tensors), not per model.

The domain network is fixed as Inception's weights are: trained once per dataset (npdraw.training.features,
an explicit act), its weights committed under features/<dataset>.pt beside a record
features/<dataset>.json that holds their SHA-256, and loaded only through that record, which refuses
weights whose checksum differs.  Every run of every profile is scored with the same network, so a
domain FID computed on any machine is on the scale of the committed ones; the metric card
(npdraw.evaluation.card) says whether the network's FID can judge.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from npdraw.artifacts.contracts import ArrayContract, CheckpointContract, Field
from npdraw.artifacts.errors import ArtifactError, ParamsError
from npdraw.artifacts.io import file_digest, read_checkpoint, save_torch, write_json
from npdraw.workflow.paths import FEATURES_RECORD

log = logging.getLogger(__name__)
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
RETRAIN = "python -m npdraw.training.features --dataset {dataset}"   # the explicit act that changes a network
PR_NEIGHBOURS = 3   # k of precision and recall's k-nearest-neighbour balls (Kynkaanniemi et al. 2019)

# features/<dataset>.pt: the network's settings (channels, classes, width, num_features, feature_scale) and
# weights, and the dataset it learned.
CLASSIFIER_CHECKPOINT = CheckpointContract("classifier", "npdraw.training.features", ("cfg", "state_dict", "dataset"))
# reference/stats.pt: torchmetrics' real-image states of the test images per feature network
# (None where unavailable), the number of images, the dataset and profile they belong to, the feature
# network's checksum, and under `real` the FID / KID of real held-out images against them (the floor: what
# a model whose samples were real images scores), drawn several times for its spread.
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
    """A small CNN: images in [0, 1] (B, C, H, W) -> class logits.  Five 3x3 convolutions (two of stride 2),
    each with batch normalisation and ReLU, widths w, w, 2w, 2w, 4w; a 2x2 average pool; a linear layer
    to `num_features` with batch normalisation and ReLU: the features; a linear head.  `features` divides
    them by `feature_scale`, the root mean square of one feature over the network's validation images (set
    after training, npdraw.training.classifier), so a domain FID is in units of that spread whatever the
    width or dataset.  (Batch normalisation lets it learn Omniglot's 1,623 characters from 15 drawings each.)"""

    def __init__(self, channels: int, classes: int, width: int = 32, num_features: int = 128,
                 feature_scale: float = 1.0):
        super().__init__()
        self.cfg = {"channels": channels, "classes": classes, "width": width, "num_features": num_features,
                    "feature_scale": feature_scale}

        def conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        w = width
        self.body = nn.Sequential(
            *conv(channels, w), *conv(w, w, 2), *conv(w, 2 * w), *conv(2 * w, 2 * w, 2), *conv(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),                             # (B, 4w, 2, 2) -> (B, 16w)
            nn.Linear(16 * w, num_features, bias=False), nn.BatchNorm1d(num_features), nn.ReLU())
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


def features_record(dataset: str, root: str | Path = ".") -> Path:
    """features/<dataset>.json under `root`: the committed record of the dataset's domain network (its
    weights: the same name, .pt)."""
    return Path(root) / FEATURES_RECORD.format(dataset=dataset)


def save_classifier(record_path: str | Path, model: DomainClassifier | None, record: dict, dataset: str) -> dict:
    """Write the dataset's network: its weights beside the record (same name, .pt) and the record with their
    SHA-256; or (model None) a record that the dataset has none, whose `reason` says why.  Returns the record."""
    record_path = Path(record_path)
    if model is None:
        out = {"dataset": dataset, "available": False, **record}
    else:
        weights = record_path.with_suffix(".pt")
        save_torch(weights, {"kind": CLASSIFIER_CHECKPOINT.kind, "dataset": dataset, "cfg": model.cfg,
                             "state_dict": model.state_dict()})
        out = {"dataset": dataset, "available": True, "weights": weights.name, "sha256": file_digest(weights), **record}
    write_json(record_path, out)
    return out


def read_record(path: str | Path) -> dict:
    """A feature network's record (features/<dataset>.json), checked for the keys every record has."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no feature network record; the committed records are features/<dataset>.json "
                            f"(make one with `{RETRAIN.format(dataset='<dataset>')}`)")
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: not a readable feature network record ({err}); restore it with "
                            f"`git checkout {path}`") from None
    need = ("dataset", "available") + (("weights", "sha256", "valid_accuracy", "labels") if isinstance(record, dict)
                                       and record.get("available") else ("reason",))
    if not isinstance(record, dict) or any(k not in record for k in need):
        raise ArtifactError(f"{path}: a feature network record holds {', '.join(need)}; restore it with "
                            f"`git checkout {path}`")
    return record


def load_classifier(path: str | Path, cfg=None) -> DomainClassifier | None:
    """The dataset's domain network from its record `path` (features/<dataset>.json); None when the record
    says the dataset has none (its `reason` says why).  The weights must have the SHA-256 the record holds
    (else an error naming both files); with a run's `cfg`, the record must be of the run's dataset."""
    path = Path(path)
    record = read_record(path)
    if cfg is not None and record["dataset"] != cfg.dataset:
        raise ArtifactError(f"{path}: the feature network of {record['dataset']!r}, not of this run's dataset "
                            f"{cfg.dataset!r}")
    if not record["available"]:
        return None
    weights = path.with_name(record["weights"])
    if not weights.is_file():
        raise ArtifactError(f"{weights}: the weights {path} names are missing; restore them with `git checkout "
                            f"{weights}`")
    found = file_digest(weights)
    if found != record["sha256"]:
        raise ArtifactError(f"{weights}: SHA-256 {found[:12]}..., but {path} records {record['sha256'][:12]}...: "
                            f"the weights were changed without their record (and the metric card). Restore them "
                            f"(`git checkout {weights}`) or retrain the network as an explicit act: "
                            f"`{RETRAIN.format(dataset=record['dataset'])}`")
    ckpt = read_checkpoint(weights)
    CLASSIFIER_CHECKPOINT.check(weights, ckpt, {"dataset": record["dataset"]}, found_config=ckpt)
    with CLASSIFIER_CHECKPOINT.rebuilding(weights):
        c = ckpt["cfg"]
        model = DomainClassifier(c["channels"], c["classes"], c["width"], c["num_features"], c["feature_scale"])
        model.load_state_dict(ckpt["state_dict"])
    # Reported beside every FID on its features: how well it learned, which labels, which weights.
    model.valid_accuracy, model.labels, model.sha256 = record["valid_accuracy"], record["labels"], record["sha256"]
    return model.eval()


def network_identity(classifier: DomainClassifier | None) -> dict | None:
    """What a metrics file records of the domain network its FIDs used (None: there was none)."""
    if classifier is None:
        return None
    return {"sha256": classifier.sha256, "labels": classifier.labels, "classes": classifier.cfg["classes"],
            "valid_accuracy": classifier.valid_accuracy}


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
    """FID, KID (mean, std), precision and recall (k = PR_NEIGHBOURS) of `images` against the cached
    reference statistics; KID's random subsets are drawn with `seed` (torchmetrics draws them from the
    global torch generator)."""
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
    # KID keeps every feature of both sets: the manifolds of precision and recall are built from them.
    pr = precision_recall(reference["kid_features"], torch.cat(kid.fake_features), PR_NEIGHBOURS)
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std), **pr}


def kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance of each of the (N, F) features to its k-th nearest other feature (N,), float64."""
    f = features.double()
    radii = [torch.cdist(f[s:s + chunk], f).kthvalue(k + 1, dim=1).values for s in range(0, len(f), chunk)]
    return torch.cat(radii)   # k + 1: the nearest feature of a point is itself, at distance 0


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019) of generated features `fake`
    (M, F) against real features `real` (N, F): the real manifold is the union of balls around each real
    feature of radius its distance to its k-th nearest real neighbour; precision is the share of fake
    features inside it, recall the share of real features inside the fake manifold (built the same
    way).  Strict inequalities, as the reference implementation (clovaai/generative-evaluation-prdc)."""
    real_r, fake_r = kth_neighbour_radii(real, k), kth_neighbour_radii(fake, k)
    d = torch.cdist(real.double(), fake.double())                    # (N, M)
    precision = (d < real_r[:, None]).any(0).double().mean()
    recall = (d < fake_r[None, :]).any(1).double().mean()
    return {"precision": float(precision), "recall": float(recall)}

