"""What `make run` prints at its end and the report's landing page read from a run's metrics files."""

import json

import yaml

from npdraw.reporting.summary import headline, run_paths, summary
from npdraw.workflow.resolve import resolve
from tests.conftest import REPO

# An evaluation record as evaluate writes it without the optional Inception network (torch-fidelity).
EVALUATION = {"nll_nats": 503.08, "nll_samples": 5, "nll_images": 100, "test_images": 200, "elbo_nats": -504.8,
              "bce_nats": 503.3, "kl_nats": 1.5, "fid": None, "inception": "skipped: torch-fidelity is not installed",
              "fid_domain": 226.22, "fid_domain_floor": 4.341, "kid_domain": 20.48, "precision_domain": 0.0,
              "recall_domain": 0.0, "generated": 200, "fid_reference_images": 200, "selected_epoch": 2,
              "selected_by": "valid_elbo", "provenance": {"numerics": {"precision": "bf16"}}}


def test_a_run_scored_without_inception_is_summarised_with_its_domain_fid_and_floor(tmp_path, monkeypatch):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(dataset="mnist", profile="smoke", split="full", seed=0, variant="base")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    evaluation = tmp_path / run_paths(resolve(params))["evaluation"]
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text(json.dumps(EVALUATION))

    text = summary("params.yaml")
    assert "FID (Inception) not computed" in text and "domain FID 226.220 (real images: 4.341)" in text
    rows = dict(headline(params)["rows"])
    assert rows["domain FID"].startswith("226.22 (real images: 4.34; 200 samples") and "Inception FID" not in rows
