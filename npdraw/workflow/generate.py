"""The engines' files, generated from the stage table (npdraw.workflow.stages): workflow/stages.smk
(one Snakemake rule per stage) and dvc.yaml (one DVC stage per stage DVC runs); and from the systems
registry, each system's entry file workflow/systems/<name>.json (npdraw.workflow.closure.entry), the code
dependency through which a stage follows its system's registry entry.

    python -m npdraw.workflow.generate --write     # regenerate what is stale
    python -m npdraw.workflow.generate --check     # exit 1 naming the stale files

tests/test_pipeline.py fails when a committed file is not what the table generates.
"""

from __future__ import annotations

import re
import sys

from npdraw.workflow.closure import ENTRY, REPO, code_deps, entry
from npdraw.workflow.resolve import CHOICE_KEYS, params_yaml_keys
from npdraw.workflow.stages import STAGES, Stage, engine_systems
from npdraw.workflow.systems import SYSTEMS


def dvc_params(s: Stage) -> list[str]:
    """dvc.yaml's `params` of a stage: params.yaml keys of its declared keys, each once."""
    out: list[str] = []
    for key in s.params:
        out.extend(k for k in params_yaml_keys(key, s.scope) if k not in out)
    # The variant first, then the data table and the profile, as a reader scans them.
    order = {"variant": 0, "datasets.${dataset}": 1, "method.${dataset}": 2, "profiles.${profile}": 3}
    return sorted(out, key=lambda k: order.get(k, 4))



# --- dvc.yaml ----------------------------------------------------------------------------------

DVC_HEADER = """\
# GENERATED from npdraw/workflow/stages.py (the stage table): do not edit; regenerate with
#   python -m npdraw.workflow.generate --write
# The same stages as the Snakefile's per-run rules (workflow/stages.smk).  Paths are templated from
# params.yaml's run choices, so runs of different datasets, profiles, splits, seeds and variants never
# overwrite each other:
#   dvc repro
#   dvc exp run -S dataset=omniglot -S profile=smoke
#   dvc exp run -S dataset=omniglot -S variant=K6-M10
# The baselines (variants pixelvae, vae, draw: npdraw/workflow/systems.py) run with Snakemake only: their
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
# GENERATED from npdraw/workflow/stages.py (the stage table): do not edit; regenerate with
#   python -m npdraw.workflow.generate --write
# The per-run stages, one rule each; dvc.yaml holds the same stages.  Written out rather than made in
# a loop: Snakemake runs a loop-made rule with the last iteration's shell command (snakemake#2832).
# Their code dependencies are computed when the Snakefile is read (closure.code_closure; for a run's
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
        # The report groups pictures by the wildcards their paths have (a run's, or a profile's alone).
        label = "RUN_LABEL" if any("{split}" in path for path in outs.values()) else "PROFILE_LABEL"
        code = (f'wf.variant_code("{s.script}")' if s.scope == "variant" else
                f'closure.code_closure("{s.script}")')
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
                 f'        cfg=wf.stage_params(config, stage_table.stage("{s.name}")),', "    shell:"]
        cmd = command(s, "{params.py}", lambda kind, flag, p: f"{{wildcards.{flag}}}" if kind == "choice"
                      else f"{{{kind}.{flag}}}")
        rule += _wrap(f"{cmd} 2> {{log}}", "        ")
        out += rule
    narrow = [s.name for s in STAGES.values() if s.variants and "snakemake" in s.engines]
    out += ["", "", "# The baselines' trainer writes the model of the variant that is a baseline's name, which",
            "# train_model's pattern matches too.", f"ruleorder: {' > '.join(narrow)} > train_model"]
    return "\n".join(out) + "\n"


GENERATED = {"dvc.yaml": dvc_yaml, "workflow/stages.smk": snakemake_rules,
             **{ENTRY.format(name=name): (lambda name=name: entry(name)) for name in SYSTEMS}}


def main(argv: list[str]) -> None:
    """`--write`: regenerate every file the table generates; `--check`: exit 1 naming the stale ones."""
    stale = [name for name, make in GENERATED.items()
             if not (REPO / name).is_file() or (REPO / name).read_text() != make()]
    if "--write" in argv:
        for name in stale:
            (REPO / name).parent.mkdir(parents=True, exist_ok=True)
            (REPO / name).write_text(GENERATED[name]())
            print(f"wrote {name}")
    elif stale:
        print(f"stale (regenerate with python -m npdraw.workflow.generate --write): {', '.join(stale)}")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
