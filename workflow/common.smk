# Configuration and path patterns shared by every rule.
import sys

from npdraw.config import ParamsError, load_params, resolve, validate_params
from npdraw import lowdata, workflow as wf


configfile: "params.yaml"


# The schema check runs before any job; --config may change only the run choices.
validate_params(config, "params.yaml (+ --config)")
wf.check_config_overrides(config, load_params("params.yaml"))

# How `snakemake --report` groups a run's pictures (captions: workflow/report/*.rst).
RUN_LABEL = "{dataset} · {profile} · {split} · seed {seed} · {variant}"

PY = sys.executable  # the interpreter running Snakemake: the project's .venv
GPUS = config["compute"]["gpus"]  # GPUs per training / evaluation job (>1: the stage runs torchrun)

wildcard_constraints:
    dataset=wf.WILDCARDS["dataset"],
    profile=wf.WILDCARDS["profile"],
    split=wf.WILDCARDS["split"],
    seed=wf.WILDCARDS["seed"],
    variant=wf.WILDCARDS["variant"],

