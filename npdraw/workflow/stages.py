"""The pipeline's per-run stages, each written once: the stage table.

Every stage of one run (data, parts, prior, model, evaluation) is an entry of `STAGES`: its CLI, the
files it reads and writes (path patterns over the run's choices, npdraw.workflow.paths), the params it
reads (keys of the resolved configuration, npdraw.workflow.resolve) and what a scheduler needs to know.
Both engines are generated from it (npdraw.workflow.generate: workflow/stages.smk and dvc.yaml); the
code a stage depends on is computed from its imports (npdraw.workflow.closure).  The params a stage
declares are the ones Snakemake fingerprints, the ones the stage records in its metrics' provenance
block, and (mapped to params.yaml's keys by npdraw.workflow.resolve.params_yaml_keys) the ones
dvc.yaml lists.

The gathering rules (tables, low-data curves, report pictures) stay hand-written Snakemake rules
(workflow/*.smk): they have no DVC counterpart.  This module only defines the workflow: no stage's
numbers depend on it, so it is no stage's code dependency (its effect is each stage's command, inputs,
outputs and declared params, which the engines see).
"""

from __future__ import annotations

from dataclasses import dataclass

from npdraw.workflow.paths import (
    DATA_DIR,
    FEATURES_RECORD,
    REFERENCE_DIR,
    RUN_DIR,
    SCOPE_CHOICES,
    SCOPES,
    VARIANT_DIR,
    placeholders,
)
from npdraw.workflow.resolve import (
    CHOICE_KEYS,
    LR_TOKEN,
    NUMERIC_KEYS,
    SYSTEM_SECTION,
    resolve,
    resolved_value,
    system_of,
)
from npdraw.workflow.systems import BASELINES, SYSTEMS

# The compute settings that change a stage's numbers (precision, layout, compile), as params keys.
NUMERICS = tuple(f"compute.{key}" for key in NUMERIC_KEYS)
# NP-DRAW's settings the part stages (bank, parses, prior) read: the canvas and the parts, not lambda.
PARTS = ("method.canvas_size", "method.patch_size", "method.bank_size")
# The keys of the training section the prior's trainer reads: how its budget is cut into rounds.
PRIOR_ROUNDS = ("training.rounds", "training.round_images")
# The settings a model trainer's checkpoint selection reads (training.select).
MODEL_SELECTION = ("training", "evaluate.inception_weights", "evaluate.nll_samples", "evaluate.colour_samples")
# A declared key that stands for the params section of the run's system (npdraw.workflow.systems): a
# baseline's trainer reads its own section only, so that changing another's reruns nothing.
# The systems that draw on parts (the bank, parses and prior stages belong to them), and the baselines.
PART_SYSTEMS = tuple(name for name, s in SYSTEMS.items() if s.parts)


@dataclass(frozen=True)
class Output:
    """A file or folder a stage writes.  `kind`: file, dir (a folder), metrics (a JSON DVC shows
    with `dvc metrics`), or live (a DVCLive folder whose plots DVC draws).  `report`: (caption file
    under workflow/report/, category) for a picture `snakemake --report` shows."""

    path: str
    kind: str = "file"
    report: tuple[str, str] | None = None
    help: str = ""           # what the file holds (the CLI's --help)


@dataclass(frozen=True)
class Stage:
    """One per-run stage (see the module docstring).  `inputs` and `outputs` map the CLI flag
    (without '--') to a path pattern; the command is `python stages/<name>.py --params params.yaml`,
    the scope's choices, then every input and output flag in order.  `params`: resolved keys the
    stage reads ('ds', 'bank', 'compute.precision', ...; SYSTEM_SECTION: the run's system's section).
    `systems`: the systems (npdraw.workflow.systems) whose runs it belongs to; `engines`: where it runs
    (the baselines' trainer is Snakemake's only, as dvc.yaml's one path scheme cannot hold two trainers
    writing the same variant folder)."""

    name: str
    scope: str
    inputs: dict[str, str]
    outputs: dict[str, Output]
    params: tuple[str, ...]
    heavy: bool = False        # uses every core it is given (Snakemake: threads)
    gpu: bool = False          # leases one GPU per process (Snakemake: resources gpu=compute.gpus)
    systems: tuple[str, ...] = tuple(SYSTEMS)
    engines: tuple[str, ...] = ("snakemake", "dvc")

    def config(self, params: dict, **choice):
        """The resolved configuration the stage runs with: `choice` (None: params' own), less what
        its scope fixes (SCOPE_CHOICES)."""
        return resolve(params, **{**choice, **SCOPE_CHOICES[self.scope]})

    @property
    def script(self) -> str:
        return f"stages/{self.name}.py"

    @property
    def choices(self) -> tuple[str, ...]:
        """The run choices the stage is named by (its CLI flags)."""
        return SCOPES[self.scope]

    @property
    def variants(self) -> str | None:
        """The variants the stage can build, as a pattern, when its systems are only baselines (their
        variant is the system's name, with a learning rate or not); None when any variant of its systems'
        grammar is one."""
        return None if set(self.systems) & set(PART_SYSTEMS) else f"({'|'.join(self.systems)})(-{LR_TOKEN})?"

    def paths(self, fields: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """(inputs, outputs) with the choices filled in from `fields`."""
        return ({k: v.format(**fields) for k, v in self.inputs.items()},
                {k: o.path.format(**fields) for k, o in self.outputs.items()})

    def patterns(self) -> tuple[dict[str, str], dict[str, str]]:
        """(inputs, outputs) as patterns over the stage's choices (Snakemake's wildcards)."""
        return self.paths(placeholders(CHOICE_KEYS))

    def log(self) -> str:
        """Snakemake's log file of the stage (a pattern over its choices)."""
        where = {"dataset": "logs/{name}/{dataset}.log", "reference": REFERENCE_DIR + "/logs/{name}.log",
                 "run": RUN_DIR + "/logs/{name}.log", "variant": VARIANT_DIR + "/logs/{name}.log"}[self.scope]
        return where.replace("{name}", self.name).format(**placeholders(SCOPES[self.scope]))


def _variant(name: str) -> str:
    return VARIANT_DIR + "/" + name


# What each input flag names, for every stage that reads it (the CLIs' --help).
INPUT_HELP = {
    "data": "prepared dataset folder",
    "splits": "splits .npz of the run",
    "bank": "part bank .npy of the run",
    "parses": "parses .npz of the run",
    "prior": "trained prior checkpoint",
    "model": "trained model checkpoint",
    "milestones": "the checkpoints its trainer kept at training.milestones (model/milestones.pt)",
    "classifier": "the dataset's committed domain network record, features/<dataset>.json (features of the domain FID)",
    "reference": "cached reference statistics of the test images",
}

_DATA = {"data": DATA_DIR}
_SPLITS = {"splits": RUN_DIR + "/splits.npz"}
_CLASSIFIER = {"classifier": FEATURES_RECORD}
_LIVE = "DVCLive folder for the training curves"
_CHECKPOINT = "best checkpoint .pt (state dict + configuration)"



def _model_outputs(reconstructions: str, metrics: str) -> dict[str, Output]:
    """What a model trainer writes (NP-DRAW's and the baselines' alike), with the helps that differ."""
    return {"out": Output(_variant("model/best.pt"), help=_CHECKPOINT),
            "reconstructions": Output(_variant("model/reconstructions.png"), report=("reconstructions.rst", "3. Model"),
                                      help=reconstructions),
            "milestones": Output(_variant("model/milestones.pt"),
                                 help="checkpoints kept at training.milestones (the learning curve's budgets)"),
            "metrics": Output(_variant("metrics/model.json"), "metrics", help=metrics),
            "live": Output(_variant("model/live"), "live", help=_LIVE)}


STAGES: dict[str, Stage] = {s.name: s for s in [
    Stage("prepare_data", "dataset", inputs={},
          outputs={"out": Output(DATA_DIR, "dir", help="output folder, e.g. data/prepared/mnist")},
          params=("datasets",)),
    Stage("make_splits", "run", inputs=_DATA,
          outputs={"out": Output(RUN_DIR + "/splits.npz", help="splits .npz (train, valid, test index arrays)"),
                   "summary": Output(RUN_DIR + "/splits.json", help="JSON summary: counts, digits / characters")},
          params=("datasets", "data")),
    Stage("build_bank", "variant", inputs={**_DATA, **_SPLITS},
          outputs={"out": Output(_variant("bank.npy"), help="bank .npy, float32 (M, C, K, K)"),
                   "picture": Output(_variant("bank.png"), report=("bank.rst", "1. Parts and parses"),
                                     help="PNG of the bank"),
                   "metrics": Output(_variant("metrics/bank.json"), "metrics",
                                     help="JSON: k-medoids objective, sizes, time")},
          params=("datasets", "data", *PARTS, "bank"), heavy=True, systems=PART_SYSTEMS),
    Stage("parse", "variant", inputs={**_DATA, **_SPLITS, "bank": _variant("bank.npy")},
          outputs={"out": Output(_variant("parses.npz"), help="parses .npz: {split}_z_id / _z_loc / _z_is, (N, T)"),
                   "picture": Output(_variant("parse.png"), report=("parse.rst", "1. Parts and parses"),
                                     help="PNG: test images next to their parsed canvases"),
                   "metrics": Output(_variant("metrics/parse.json"), "metrics",
                                     help="JSON: psnr_db per split, draw rate")},
          params=("datasets", "data", *PARTS, "parse"), heavy=True, systems=PART_SYSTEMS),
    Stage("train_prior", "variant", inputs={"parses": _variant("parses.npz"), "bank": _variant("bank.npy")},
          outputs={"out": Output(_variant("prior/best.pt"), help=_CHECKPOINT),
                   "samples": Output(_variant("prior/samples.png"), report=("prior_samples.rst", "2. Prior"),
                                     help="PNG grid of canvases sampled from the prior"),
                   "metrics": Output(_variant("metrics/prior.json"), "metrics",
                                     help="JSON: validation / test NLL of the parses, split by term"),
                   "live": Output(_variant("prior/live"), "live", help=_LIVE)},
          params=("datasets", *PARTS, "prior", *PRIOR_ROUNDS, *NUMERICS), heavy=True, gpu=True,
          systems=PART_SYSTEMS),
    Stage("train_model", "variant",
          inputs={**_DATA, **_SPLITS, "parses": _variant("parses.npz"), "prior": _variant("prior/best.pt"),
                  **_CLASSIFIER},
          outputs=_model_outputs("PNG: validation images, canvases, decoded",
                                 "JSON: elbo_nats, bce_nats, kl_nats, reg_nats (valid, test), history"),
          params=("datasets", "data", "method", "model", *MODEL_SELECTION, *NUMERICS), heavy=True, gpu=True,
          systems=PART_SYSTEMS),
    Stage("train_baseline", "variant", inputs={**_DATA, **_SPLITS, **_CLASSIFIER},
          outputs=_model_outputs("PNG: validation images and their reconstructions",
                                 "JSON: elbo_nats, bce_nats, kl_nats (valid, test), history"),
          params=("datasets", "data", SYSTEM_SECTION, *MODEL_SELECTION, *NUMERICS), heavy=True, gpu=True,
          systems=BASELINES, engines=("snakemake",)),
    Stage("edit_latents", "variant", inputs={**_DATA, **_SPLITS, "model": _variant("model/best.pt")},
          outputs={"out": Output(_variant("figures/latent_edit.png"), report=("latent_edit.rst", "3. Model"),
                                 help="PNG figure")},
          params=("datasets", "data", "method"), systems=PART_SYSTEMS),
    Stage("reference_stats", "reference", inputs={**_DATA, **_CLASSIFIER},
          outputs={"out": Output(REFERENCE_DIR + "/stats.pt", help="reference statistics .pt")},
          params=("datasets", "data", "evaluate"), heavy=True),
    Stage("metric_card", "reference", inputs={**_DATA, **_CLASSIFIER, "reference": REFERENCE_DIR + "/stats.pt"},
          outputs={"metrics": Output(REFERENCE_DIR + "/card.json", "metrics",
                                     help="JSON: the floor, every case's FID / KID / precision / recall, the checks"),
                   "picture": Output(REFERENCE_DIR + "/card.png", report=("metric_card.rst", "4. Samples"),
                                     help="PNG: a row of images per case with its FID")},
          params=("datasets", "data", "evaluate", *PARTS, "bank"), heavy=True),
    Stage("evaluate", "variant",
          inputs={**_DATA, **_SPLITS, "model": _variant("model/best.pt"),
                  "milestones": _variant("model/milestones.pt"), **_CLASSIFIER,
                  "reference": REFERENCE_DIR + "/stats.pt"},
          outputs={"metrics": Output(_variant("metrics/eval.json"), "metrics",
                                     help="JSON: nll_nats / bits_per_dim, elbo, bce, kl, fid_domain, ..., "
                                          "curve (the sample scores at each milestone)"),
                   "samples": Output(_variant("eval/samples.npz"),
                                     help=".npz of the generated images (uint8) and canvases"),
                   "grid": Output(_variant("eval/samples.png"), report=("samples.rst", "4. Samples"),
                                  help="PNG grid of generated images"),
                   "figure": Output(_variant("figures/canvases_and_samples.png"),
                                    report=("canvases_and_samples.rst", "4. Samples"),
                                    help="PNG: sampled canvases above their decoded images (Fig. 5)")},
          params=("datasets", "data", "method", "evaluate", *NUMERICS), heavy=True,
          gpu=True),
]}


def stage(name: str) -> Stage:
    """The table entry of stage `name`."""
    return STAGES[name]


def output(name: str, flag: str, choice: dict) -> str:
    """The path stage `name` writes under --`flag` for the run `choice` (its run choices)."""
    return stage(name).paths({k: choice[k] for k in CHOICE_KEYS})[1][flag]


def trainer(system_name: str) -> Stage:
    """The stage that trains system `system_name`'s model (writes model/best.pt of its runs)."""
    return next(s for s in STAGES.values() if system_name in s.systems and "out" in s.outputs
                and s.outputs["out"].path == _variant("model/best.pt"))


def engine_systems(engine: str) -> set[str]:
    """The systems `engine` can build: those all of whose stages it runs."""
    systems = {system for s in STAGES.values() for system in s.systems}
    return {system for system in systems
            if all(engine in s.engines for s in STAGES.values() if system in s.systems)}


def unbuildable(variant: str, s: Stage, engine: str) -> str | None:
    """Why stage `s`, run by `engine` (snakemake or dvc), must refuse `variant`; None if it need not."""
    system = system_of(variant)
    builders = [e for e in ("snakemake", "dvc") if system in engine_systems(e)]
    if system in s.systems and system in engine_systems(engine):
        return None
    where = (f"stage {s.name} belongs to {' and '.join(s.systems)}" if system not in s.systems
             else f"{engine} does not run all of its stages")
    return (f"variant {variant!r} (the {system} system): {where}. It is built by "
            f"{' and '.join(builders)}: `snakemake --cores all --config variant={variant}`"
            + ("" if "dvc" in builders else "; dvc.yaml holds NP-DRAW's stages only"))


# --- code dependencies ------------------------------------------------------------------------
def params_block(cfg, s: Stage) -> dict:
    """{key: resolved value} of the params `s` reads: its metrics' provenance and its Snakemake
    rerun fingerprint."""
    return {key: resolved_value(cfg, key) for key in s.params}
