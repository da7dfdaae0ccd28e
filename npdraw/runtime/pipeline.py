"""The pipeline's per-run stages, each written once.

Every stage of one run (data, parts, prior, model, evaluation) is an entry of `STAGES`: its CLI,
the files it reads and writes (path patterns over the run's choices), the params it reads (keys
of the resolved configuration, npdraw.runtime.config.resolve) and what a scheduler needs to know.  Both
engines are generated from it:

* Snakemake: workflow/stages.smk, one rule per entry;
* DVC: dvc.yaml;

both written by `python -m npdraw.runtime.pipeline --write` (tests/test_pipeline.py fails when a
committed file is not what the table generates).

The code a stage depends on is computed, not typed: the import closure of its CLI within the
project (`code_closure`), so changing any module a stage imports, directly or not, reruns it in
both engines.  The params a stage declares are the ones Snakemake fingerprints, the ones the
stage records in its metrics' provenance block, and (mapped to params.yaml's keys by
`params_yaml_keys`) the ones dvc.yaml lists.

The gathering rules (tables, low-data curves, report pictures) stay hand-written Snakemake rules
(workflow/*.smk): they have no DVC counterpart.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from npdraw.runtime.config import (
    CHOICE_KEYS,
    MODEL_TOKENS,
    NUMERIC_KEYS,
    PRIOR_TOKENS,
    SECTIONS,
    VARIANT_KEYS,
    resolve,
    system_of,
    table_keys,
)
from npdraw.runtime.systems import BASELINES, SYSTEMS, system

REPO = Path(__file__).resolve().parents[2]   # npdraw/runtime/pipeline.py -> the repository
PACKAGE = "npdraw"

# Where a run's files live: every path in the table is one of these followed by a file name.
DATA_DIR = "data/prepared/{dataset}"
REFERENCE_DIR = "results/{dataset}/{profile}/reference"
RUN_DIR = "results/{dataset}/{profile}/{split}/seed{seed}"
VARIANT_DIR = RUN_DIR + "/{variant}"
# A run's training-curves picture (Snakemake's plot_curves rule, from the stages' DVCLive folders).
CURVES = VARIANT_DIR + "/figures/training_curves.png"

# The run choices each scope of stage is named by (and takes as CLI flags, in this order).
SCOPES = {
    "dataset": ("dataset",),                          # data/prepared/<dataset>: shared by every profile
    "reference": ("dataset", "profile"),              # the domain classifier and FID statistics
    "run": ("dataset", "profile", "split", "seed"),   # the splits
    "variant": CHOICE_KEYS,                           # everything of one ablation variant
}

# The choices a stage of a narrower scope is resolved with (its params, provenance and fingerprint):
# the data, the splits and the reference statistics do not depend on the variant, and the reference
# (domain classifier, FID statistics) is the full training set's, whatever the run's split and seed.
SCOPE_CHOICES = {"dataset": {"split": "full", "seed": 0, "variant": "base"},
                 "reference": {"split": "full", "seed": 0, "variant": "base"},
                 "run": {"variant": "base"}, "variant": {}}

# The compute settings that change a stage's numbers (precision, layout, compile), as params keys.
NUMERICS = tuple(f"compute.{key}" for key in NUMERIC_KEYS)
# NP-DRAW's settings the part stages (bank, parses, prior) read: the canvas and the parts, not lambda.
PARTS = ("method.canvas_size", "method.patch_size", "method.bank_size")
# The settings a model trainer's checkpoint selection reads (training.select).
MODEL_SELECTION = ("training", "evaluate.inception_weights", "evaluate.nll_samples", "evaluate.colour_samples")
# A declared key that stands for the params section of the run's system (npdraw.runtime.systems): a
# baseline's trainer reads its own section only, so that changing another's reruns nothing.
SYSTEM_SECTION = "system"
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
    `systems`: the systems (npdraw.runtime.systems) whose runs it belongs to; `engines`: where it runs
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
        variant is the system's name); None when any variant of its systems' grammar is one."""
        return None if set(self.systems) & set(PART_SYSTEMS) else "|".join(self.systems)

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


def placeholders(names) -> dict[str, str]:
    """{'dataset': '{dataset}', ...}: formatting with it leaves those fields as they are."""
    return {n: "{" + n + "}" for n in names}


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
    "classifier": "the dataset's domain classifier checkpoint (features of the domain FID)",
    "reference": "cached reference statistics of the test images",
}

_DATA = {"data": DATA_DIR}
_SPLITS = {"splits": RUN_DIR + "/splits.npz"}
_CLASSIFIER = {"classifier": REFERENCE_DIR + "/classifier.pt"}
_LIVE = "DVCLive folder for the training curves"
_CHECKPOINT = "best checkpoint .pt (state dict + configuration)"



def _model_outputs(reconstructions: str, metrics: str) -> dict[str, Output]:
    """What a model trainer writes (NP-DRAW's and the baselines' alike), with the helps that differ."""
    return {"out": Output(_variant("model/best.pt"), help=_CHECKPOINT),
            "reconstructions": Output(_variant("model/reconstructions.png"), report=("reconstructions.rst", "3. Model"),
                                      help=reconstructions),
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
          params=("datasets", *PARTS, "prior", *NUMERICS), heavy=True, gpu=True, systems=PART_SYSTEMS),
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
    Stage("train_classifier", "reference", inputs=_DATA,
          outputs={"out": Output(REFERENCE_DIR + "/classifier.pt", help="classifier checkpoint .pt"),
                   "metrics": Output(REFERENCE_DIR + "/classifier.json", "metrics",
                                     help="JSON: validation accuracy, classes")},
          params=("datasets", "data", "classifier", *NUMERICS), heavy=True),
    Stage("reference_stats", "reference", inputs={**_DATA, **_CLASSIFIER},
          outputs={"out": Output(REFERENCE_DIR + "/stats.pt", help="reference statistics .pt")},
          params=("datasets", "data", "evaluate"), heavy=True),
    Stage("evaluate", "variant",
          inputs={**_DATA, **_SPLITS, "model": _variant("model/best.pt"), **_CLASSIFIER,
                  "reference": REFERENCE_DIR + "/stats.pt"},
          outputs={"metrics": Output(_variant("metrics/eval.json"), "metrics",
                                     help="JSON: nll_nats / bits_per_dim, elbo, bce, kl, fid_domain, ..."),
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

def _module_file(module: str) -> Path | None:
    """The project file of a dotted module name (a package's __init__.py), or None if not ours."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Dotted names a file imports (anywhere in it: functions import lazily too), with each package
    on the way (importing a.b.c runs a/__init__ and a/b/__init__) and `from a import b` as a.b."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


# Modules that import a system's model module by the name in its registry entry ('module:Class',
# npdraw.runtime.systems), which no import statement shows: a stage whose closure holds one depends on
# the model modules of the systems it runs for.
LOADERS = frozenset({"npdraw/models/interface.py"})


def _closure(start: list[Path]) -> set[Path]:
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        for name in _imports(todo.pop()):
            found = _module_file(name)
            if found is not None and found not in seen:
                seen.add(found)
                todo.append(found)
    return seen


@cache
def code_closure(script: str, systems: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The project's modules `script` (a path relative to the repository) imports, directly or
    through other project modules, as sorted repository-relative paths (the script excluded); where it
    loads a system's model by name (LOADERS), the model modules of `systems` (None: every system)."""
    seen = _closure([REPO / script])
    if LOADERS & {p.relative_to(REPO).as_posix() for p in seen}:
        models = {_module_file(SYSTEMS[name].model.partition(":")[0]) for name in (systems or SYSTEMS)}
        seen |= models | _closure(sorted(models))
    return tuple(sorted(p.relative_to(REPO).as_posix() for p in seen))


def code_deps(script: str, systems: tuple[str, ...] | None = None) -> list[str]:
    """What a rule or stage running `script` depends on as code: the script and its closure."""
    return [script, *code_closure(script, systems)]


# --- params ------------------------------------------------------------------------------------

def params_yaml_keys(key: str, scope: str = "variant") -> list[str]:
    """The params.yaml keys (as dvc.yaml names them, ${...} for the run's choices) that the declared
    key `key` is made of (npdraw.runtime.config.resolve): `datasets` is the dataset's entry of the data table,
    `method` its entry of NP-DRAW's settings, a section key comes from the section and the profile's
    overrides, and the variant (for a stage of variant scope) changes method, model and prior keys."""
    head, _, rest = key.partition(".")
    sub = "." + rest if rest else ""
    by_variant = {"method": {k for k, _ in VARIANT_KEYS.values()},
                  "model": {k for k, _ in MODEL_TOKENS.values()},
                  "prior": {k for token in PRIOR_TOKENS.values() for k in token}}
    variant = ["variant"] if scope == "variant" and head in by_variant and (
        not rest or rest in by_variant[head]) else []
    if head in ("datasets", "method"):
        return [f"{head}.${{dataset}}{sub}", *variant]
    if head == "compute":
        return [key]
    if key == SYSTEM_SECTION:   # whichever baseline's section the variant selects
        return [*(s.section for s in SYSTEMS.values() if not s.parts), "profiles.${profile}", "variant"]
    if head in SECTIONS:
        return [key, "profiles.${profile}", *variant]
    raise KeyError(f"{key}: not a declarable key (datasets, method, compute or one of {', '.join(SECTIONS)})")


def dvc_params(s: Stage) -> list[str]:
    """dvc.yaml's `params` of a stage: params.yaml keys of its declared keys, each once."""
    out: list[str] = []
    for key in s.params:
        out.extend(k for k in params_yaml_keys(key, s.scope) if k not in out)
    # The variant first, then the data table and the profile, as a reader scans them.
    order = {"variant": 0, "datasets.${dataset}": 1, "method.${dataset}": 2, "profiles.${profile}": 3}
    return sorted(out, key=lambda k: order.get(k, 4))


def resolved_value(cfg, key: str):
    """The value of a declared key in a resolved configuration: cfg['compute']['precision'] for
    'compute.precision'; `datasets` and `method` are the two halves of cfg['ds'] (variant applied);
    SYSTEM_SECTION the section of the run's system."""
    if key == SYSTEM_SECTION:
        return cfg[system(cfg["system"]).section]
    head, _, rest = key.partition(".")
    if head in ("datasets", "method"):
        table = {k: cfg["ds"][k] for k in table_keys("dataset" if head == "datasets" else "method")}
        return table[rest] if rest else table
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def params_block(cfg, s: Stage) -> dict:
    """{key: resolved value} of the params `s` reads: its metrics' provenance and its Snakemake
    rerun fingerprint."""
    return {key: resolved_value(cfg, key) for key in s.params}


# --- dvc.yaml ----------------------------------------------------------------------------------

DVC_HEADER = """\
# GENERATED from npdraw/runtime/pipeline.py (the stage table): do not edit; regenerate with
#   python -m npdraw.runtime.pipeline --write
# The same stages as the Snakefile's per-run rules (workflow/stages.smk).  Paths are templated from
# params.yaml's run choices, so runs of different datasets, profiles, splits, seeds and variants never
# overwrite each other:
#   dvc repro
#   dvc exp run -S dataset=omniglot -S profile=smoke
#   dvc exp run -S dataset=omniglot -S variant=K6-M10
# The baselines (variants pixelvae, vae, draw: npdraw/runtime/systems.py) run with Snakemake only: their
# trainer, train_baseline, writes the same variant folder as train_model; NP-DRAW's stages refuse them here.
# Commands run the `python` first on PATH: activate .venv first.
"""


def _dvc(path: str) -> str:
    """A path pattern with dvc's ${choice} templating."""
    return path.format(**{c: "${" + c + "}" for c in CHOICE_KEYS})


def command(s: Stage, python: str, path, sep: str = " ") -> str:
    """The stage's command line: `python` the interpreter, `path(kind, flag, pattern)` how each
    choice ('choice'), input ('input') and output ('output') appears in the engine's syntax; `sep`
    goes before each input and output flag (a line break keeps dvc.yaml readable)."""
    words = [python, s.script, "--params", "params.yaml"]
    words += [f"--{c} {path('choice', c, None)}" for c in s.choices]
    files = [f"--{flag} {path('input', flag, p)}" for flag, p in s.inputs.items()]
    files += [f"--{flag} {path('output', flag, o.path)}" for flag, o in s.outputs.items()]
    return sep.join([" ".join(words), *files])


def dvc_yaml() -> str:
    """The text of dvc.yaml, generated from the table."""
    lines = [DVC_HEADER.rstrip("\n"), "stages:"]

    def block(name: str, items: list[str]) -> None:
        if items:
            lines.append(f"    {name}:")
            lines.extend(f"      - {item}" for item in items)

    for s in STAGES.values():
        if "dvc" not in s.engines:
            continue
        cmd = command(s, "python", lambda kind, flag, p: "${" + flag + "}" if kind == "choice" else _dvc(p),
                      sep="\n      ")
        lines += [f"  {s.name}:", "    cmd: >-", f"      {cmd}"]
        code = code_deps(s.script, tuple(sorted(engine_systems("dvc"))))   # DVC builds NP-DRAW only
        block("deps", [*code, *(_dvc(p) for p in s.inputs.values())])
        block("params", dvc_params(s))
        block("outs", [_dvc(o.path) for o in s.outputs.values() if o.kind != "metrics"])
        block("metrics", [_dvc(o.path) for o in s.outputs.values() if o.kind == "metrics"])
        lines.append("")
    lines.append("# Training curves written by DVCLive inside the stages' outputs: `dvc plots show`.")
    lines.append("plots:")
    for s in STAGES.values():
        if "dvc" in s.engines:
            lines += [f"  - {_dvc(o.path)}/plots/metrics:\n      x: step" for o in s.outputs.values()
                      if o.kind == "live"]
    return "\n".join(lines) + "\n"


# --- workflow/stages.smk ------------------------------------------------------------------------

SMK_HEADER = """\
# GENERATED from npdraw/runtime/pipeline.py (the stage table): do not edit; regenerate with
#   python -m npdraw.runtime.pipeline --write
# The per-run stages, one rule each; dvc.yaml holds the same stages.  Written out rather than made in
# a loop: Snakemake runs a loop-made rule with the last iteration's shell command (snakemake#2832).
# Their code dependencies are computed when the Snakefile is read (pipeline.code_closure; for a run's
# stages, of the system its variant selects: wf.variant_code).
"""


def _wrap(cmd: str, indent: str, width: int = 100) -> list[str]:
    """Snakemake's shell string as implicitly joined literals of about `width` characters, broken
    before an option, never between an option and its value."""
    lines = [""]
    for piece in re.split(r" (?=--|2>)", cmd):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece + " "
    lines[-1] = lines[-1].rstrip()
    return [f'{indent}"{line}"' for line in lines]


def snakemake_rules() -> str:
    """The text of workflow/stages.smk, generated from the table."""
    out = [SMK_HEADER]
    for s in STAGES.values():
        if "snakemake" not in s.engines:
            continue
        ins, outs = s.patterns()
        label = "RUN_LABEL"
        code = (f'wf.variant_code("{s.script}")' if s.scope == "variant" else
                f'pipeline.code_closure("{s.script}")')
        rule = ["", "", f"rule {s.name}:", "    input:", f'        script="{s.script}",', f"        code={code},"]
        rule += [f'        {flag}="{path}",' for flag, path in ins.items()]
        rule.append("    output:")
        for flag, path in outs.items():
            o = s.outputs[flag]
            if o.kind in ("dir", "live"):
                rule.append(f'        {flag}=directory("{path}"),')
            elif o.report:
                caption, category = o.report
                rule += [f"        {flag}=report(", f'            "{path}",',
                         f'            caption="report/{caption}",', f'            category="{category}",',
                         f"            subcategory={label},", "        ),"]
            else:
                rule.append(f'        {flag}="{path}",')
        rule += ["    log:", f'        "{s.log()}",']
        if s.variants:
            rule += ["    wildcard_constraints:", f'        variant="{s.variants}",']
        if s.heavy:
            rule.append("    threads: 16  # capped by --cores; torch uses them all")
        if s.gpu:
            rule += ["    resources:", "        gpu=GPUS,  # params compute.gpus: one leased GPU per process"]
        rule += ["    conda:", '        "envs/npdraw.yaml"', "    params:", "        py=PY,",
                 f'        cfg=wf.stage_params(config, pipeline.stage("{s.name}")),', "    shell:"]
        cmd = command(s, "{params.py}", lambda kind, flag, p: f"{{wildcards.{flag}}}" if kind == "choice"
                      else f"{{{kind}.{flag}}}")
        rule += _wrap(f"{cmd} 2> {{log}}", "        ")
        out += rule
    narrow = [s.name for s in STAGES.values() if s.variants and "snakemake" in s.engines]
    out += ["", "", "# The baselines' trainer writes the model of the variant that is a baseline's name, which",
            "# train_model's pattern matches too.", f"ruleorder: {' > '.join(narrow)} > train_model"]
    return "\n".join(out) + "\n"


GENERATED = {"dvc.yaml": dvc_yaml, "workflow/stages.smk": snakemake_rules}


def main(argv: list[str]) -> None:
    """`--write`: regenerate every file the table generates; `--check`: exit 1 naming the stale ones."""
    stale = [name for name, make in GENERATED.items() if (REPO / name).read_text() != make()]
    if "--write" in argv:
        for name in stale:
            (REPO / name).write_text(GENERATED[name]())
            print(f"wrote {name}")
    elif stale:
        print(f"stale (regenerate with python -m npdraw.runtime.pipeline --write): {', '.join(stale)}")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
