# Configuration and path patterns shared by every rule.
import sys

from npdraw.artifacts.errors import NpdrawError
from npdraw.reporting import lowdata, summary
from npdraw.workflow import closure, paths, runlock
from npdraw.workflow import snakemake as wf
from npdraw.workflow import stages as stage_table
from npdraw.workflow.params import load_params, validate_params


configfile: "params.yaml"


# The schema, the run choices and the cross-key checks run before any job; --config may change only
# the run choices.  A refusal is one `error:` paragraph and exit 2, as from every stage CLI.
# A main process that will execute jobs then takes the run locks (npdraw.workflow.runlock): the same
# configuration running already is refused, a different one is waited for; held until exit.
try:
    validate_params(config, "params.yaml (+ --config)")
    wf.check_config_overrides(config, load_params("params.yaml"))
    RUN_LOCKS = runlock.acquire(config) if workflow.is_main_process and runlock.executes(sys.argv) else []
except NpdrawError as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)

# How `snakemake --report` groups a run's pictures (captions: workflow/report/*.rst); a profile's reference
# records (its metric card) have no run.
RUN_LABEL = "{dataset} · {profile} · {split} · seed {seed} · {variant}"
PROFILE_LABEL = "{dataset} · {profile}"

PY = sys.executable  # the interpreter running Snakemake: the project's .venv
GPUS = config["compute"]["gpus"]  # GPUs per training / evaluation job (>1: the stage runs torchrun)

wildcard_constraints:
    dataset=wf.WILDCARDS["dataset"],
    profile=wf.WILDCARDS["profile"],
    split=wf.WILDCARDS["split"],
    seed=wf.WILDCARDS["seed"],
    variant=wf.WILDCARDS["variant"],

