# The per-run stages, one rule each, generated from the stage table (npdraw/pipeline.py), which
# also generates dvc.yaml: command, inputs, outputs, params and code dependencies are written there
# once.  What only Snakemake needs (log files, threads, GPU resources, report captions) comes from
# the same entries.


def _shell(stage):
    """The stage's command in Snakemake's syntax, its stderr to the rule's log."""
    def path(kind, flag, pattern):
        return "{wildcards.%s}" % flag if kind == "choice" else "{%s.%s}" % (kind, flag)
    return f"{pipeline.command(stage, '{params.py}', path)} 2> {{log}}"


def _outputs(stage):
    """Named outputs: folders as directory(), pictures for the report as report()."""
    label = RUN_LABEL.format(**{**pipeline.placeholders(wf.CHOICES), **stage.fixed})
    outs = {}
    for flag, path in stage.patterns()[1].items():
        out = stage.outputs[flag]
        if out.kind in ("dir", "live"):
            outs[flag] = directory(path)
        elif out.report:
            caption, category = out.report
            outs[flag] = report(path, caption=f"report/{caption}", category=category, subcategory=label)
        else:
            outs[flag] = path
    return outs


for _stage in pipeline.STAGES.values():
    if "snakemake" not in _stage.engines:
        continue

    rule:
        name:
            _stage.name
        input:
            script=_stage.script,
            code=pipeline.code_closure(_stage.script),
            **_stage.patterns()[0],
        output:
            **_outputs(_stage),
        log:
            _stage.log(),
        threads: 16 if _stage.heavy else 1  # capped by --cores; torch uses them all
        resources:
            **({"gpu": GPUS} if _stage.gpu else {}),  # params compute.gpus: one leased GPU per process (npdraw.device)
        conda:
            "envs/npdraw.yaml"
        params:
            py=PY,
            cfg=wf.stage_params(config, _stage),
        shell:
            _shell(_stage)


# The PixelVAE baseline's trainer writes the model of variant `pixelvae`, which train_model's
# pattern matches too.
ruleorder: train_pixelvae > train_model
