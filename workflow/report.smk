# Pictures for `snakemake --report` (captions in workflow/report/).  Snakemake-only: DVC draws the
# same curves from the same DVCLive files with `dvc plots show` (dvc.yaml `plots`).

# The landing page: the configured run's headline numbers and its canvases-and-samples figure, read
# from its metrics files when the Snakefile is read (the description's template sees only config).
config["report_headline"] = summary.headline(config)


report: "report/workflow.rst"


rule plot_curves:
    input:
        unpack(wf.live_dirs),
        script="stages/plot_curves.py",
        code=closure.code_closure("stages/plot_curves.py"),
    output:
        report(
            paths.CURVES,
            caption="report/curves.rst",
            category="3. Model",
            subcategory=RUN_LABEL,
        ),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/plot_curves.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        live=lambda w: " ".join(f"{k}={v}" for k, v in wf.live_dirs(w).items()),
    shell:
        "{params.py} stages/plot_curves.py --live {params.live} --out {output}"
        " --title '{wildcards.dataset} {wildcards.profile} {wildcards.split} seed{wildcards.seed}"
        " {wildcards.variant}' 2> {log}"
