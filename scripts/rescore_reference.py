"""Re-score the committed reference model's samples on the committed feature network (method §14).

    python scripts/rescore_reference.py          # results/reference/mnist/metrics/rescore.json

The reference run (results/reference/mnist/) was scored with a domain classifier the pipeline retrained
on every machine, and a floor of the first training images in stored order.  Its checkpoint is
committed, so the new metric needs no retraining: this draws the same number of samples with the same
seed, precision and layout as its evaluation did, builds the reference profile's test statistics, floor
and metric card with the committed network (Snakemake: reference_stats and metric_card), and writes the
FID, KID, precision, recall and floor of the samples, with the network's checksum and the code's commit.
The NLL needs no re-scoring: it does not depend on the features.
"""

import json
import subprocess
import sys
from pathlib import Path

from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import write_json
from npdraw.compute.precision import use_layout
from npdraw.evaluation.features import features_record, load_classifier, load_reference
from npdraw.evaluation.floor import sample_quality
from npdraw.evaluation.importance import generate
from npdraw.models.checkpoints import load_model
from npdraw.workflow.cli import main
from npdraw.workflow.params import load_params
from npdraw.workflow.paths import REFERENCE_DIR
from npdraw.workflow.provenance import code_version, library_versions
from npdraw.workflow.resolve import resolve

RUN = Path("results/reference/mnist")


def run() -> None:
    evaluation = json.loads((RUN / "metrics/eval.json").read_text())
    ran = evaluation["provenance"]
    cfg = resolve(load_params("params.yaml"), dataset="mnist", profile="reference")
    ev = cfg.evaluate
    if (ev.samples, ev.fid_images) != (evaluation["generated"], evaluation["fid_reference_images"]):
        raise ParamsError(f"params.yaml's reference profile scores {ev.samples} samples against {ev.fid_images} "
                          f"test images; {RUN}/metrics/eval.json was scored with {evaluation['generated']} against "
                          f"{evaluation['fid_reference_images']}")
    reference = REFERENCE_DIR.format(dataset="mnist", profile="reference")
    done = subprocess.run(["snakemake", "--cores", "2", f"{reference}/stats.pt", f"{reference}/card.json"])
    if done.returncode:
        raise ParamsError(f"snakemake could not build {reference}/stats.pt and card.json (its output above)")
    classifier = load_classifier(features_record("mnist"), cfg)
    stats = load_reference(f"{reference}/stats.pt", cfg, classifier)
    numerics = ran["numerics"]
    model = use_layout(load_model(RUN / "model.pt"), numerics["channels_last"])
    seed = ran["params"]["evaluate"]["seed"]
    gen = generate(model, evaluation["generated"], seed, precision=numerics["precision"],
                   colour=ran["params"]["evaluate"]["colour_samples"])
    scores = sample_quality(stats, classifier, gen["images"], ev.kid_subset_size, ev.seed)
    card = json.loads(Path(f"{reference}/card.json").read_text())
    write_json(RUN / "metrics/rescore.json", {
        **scores, "generated": len(gen["images"]), "fid_reference_images": stats["images"],
        "sample_seed": seed, "numerics": numerics, "card_passes": card["passes"],
        "replaces": {k: evaluation.get(k) for k in ("fid_domain", "fid_domain_real", "kid_domain",
                                                      "domain_classifier_accuracy")},
        "provenance": {"code": code_version("."), "model_code": ran["code"], "libraries": library_versions()}})
    print(f"domain FID {scores['fid_domain']:.3f} (floor {scores['fid_domain_floor']:.3f} +- "
          f"{scores['fid_domain_floor_sd']:.3f}), precision {scores['precision_domain']:.3f}, recall "
          f"{scores['recall_domain']:.3f}; was {evaluation['fid_domain']:.3f} on the retired features",
          file=sys.stderr)


if __name__ == "__main__":
    main(run)
