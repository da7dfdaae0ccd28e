"""The path scheme: where a run's files live.  Every path of the stage table is one of these folders
followed by a file name, formatted with the run's choices."""

from __future__ import annotations

import re

from npdraw.workflow.resolve import CHOICE_KEYS

DATA_DIR = "data/prepared/{dataset}"
REFERENCE_DIR = "results/{dataset}/{profile}/reference"
# The dataset's committed domain feature network (npdraw.evaluation.features): a source file, made by hand.
FEATURES_RECORD = "features/{dataset}.json"
RUN_DIR = "results/{dataset}/{profile}/{split}/seed{seed}"
VARIANT_DIR = RUN_DIR + "/{variant}"
# A run's training-curves picture (Snakemake's plot_curves rule, from the stages' DVCLive folders).
CURVES = VARIANT_DIR + "/figures/training_curves.png"

# The run choices each scope of stage is named by (and takes as CLI flags, in this order).
SCOPES = {
    "dataset": ("dataset",),                          # data/prepared/<dataset>: shared by every profile
    "reference": ("dataset", "profile"),              # the FID statistics and the metric card
    "run": ("dataset", "profile", "split", "seed"),   # the splits
    "variant": CHOICE_KEYS,                           # everything of one ablation variant
}

# The choices a stage of a narrower scope is resolved with (its params, provenance and fingerprint):
# the data, the splits and the reference statistics do not depend on the variant, and the reference
# (domain classifier, FID statistics) is the full training set's, whatever the run's split and seed.
SCOPE_CHOICES = {"dataset": {"split": "full", "seed": 0, "variant": "base"},
                 "reference": {"split": "full", "seed": 0, "variant": "base"},
                 "run": {"variant": "base"}, "variant": {}}



def parser(template: str, tail: str = "") -> re.Pattern:
    """A regular expression that reads a path of `template` back into its choices (named groups), wherever it
    sits in a longer path: `template` without its first folder (results/, so that the findings' copies under
    results/findings/runs/ match too), then `tail`.  `seed` is a number, every other choice one folder."""
    body = re.escape(template.split("/", 1)[1] + tail)
    for name in CHOICE_KEYS:
        group = rf"(?P<{name}>\d+)" if name == "seed" else rf"(?P<{name}>[^/]+)"
        body = body.replace(re.escape("{" + name + "}"), group)
    return re.compile(rf"(?:^|/){body}$")


def placeholders(names) -> dict[str, str]:
    """{'dataset': '{dataset}', ...}: formatting with it leaves those fields as they are."""
    return {n: "{" + n + "}" for n in names}
