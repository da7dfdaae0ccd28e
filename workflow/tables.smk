# Results tables (method §11.1, 12): read only the evaluation metrics files of the runs listed under
# `tables.runs` in params.yaml, at the configured profile, split and seed.
#
#   snakemake --cores all tables        trains and evaluates whatever those runs still lack


rule tables:
    input:
        expand("results/tables/{profile}/{split}/seed{seed}/table1.md", profile=config["profile"],
               split=config["split"], seed=config["seed"]),


rule make_tables:
    input:
        script="stages/make_tables.py",
        code=closure.code_closure("stages/make_tables.py"),
        metrics=wf.table_inputs(config),
    output:
        table1="results/tables/{profile}/{split}/seed{seed}/table1.md",
        table1_csv=report(
            "results/tables/{profile}/{split}/seed{seed}/table1.csv",
            caption="report/table1.rst",
            category="5. Tables",
            subcategory="{profile} · {split} · seed {seed}",
        ),
        table1_tex="results/tables/{profile}/{split}/seed{seed}/table1.tex",
        nll="results/tables/{profile}/{split}/seed{seed}/nll.md",
        nll_csv=report(
            "results/tables/{profile}/{split}/seed{seed}/nll.csv",
            caption="report/nll.rst",
            category="5. Tables",
            subcategory="{profile} · {split} · seed {seed}",
        ),
        nll_tex="results/tables/{profile}/{split}/seed{seed}/nll.tex",
    log:
        "logs/make_tables/{profile}_{split}_seed{seed}.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
    shell:
        "{params.py} stages/make_tables.py --out results/tables/{wildcards.profile}/{wildcards.split}/seed{wildcards.seed}"
        " {input.metrics} 2> {log}"


# The prior-size comparison (issue: the paper's prior size against the authors' ViT): the runs under
# `tables.prior_size`, at the configured profile, split and seed.
#
#   snakemake --cores all prior_size


rule prior_size:
    input:
        expand("results/tables/{profile}/{split}/seed{seed}/prior_size.md", profile=config["profile"],
               split=config["split"], seed=config["seed"]),


rule prior_size_table:
    input:
        script="stages/make_tables.py",
        code=closure.code_closure("stages/make_tables.py"),
        metrics=wf.table_inputs(config, "prior_size"),
        priors=wf.table_inputs(config, "prior_size", "prior.json"),   # read beside each eval.json
    output:
        table="results/tables/{profile}/{split}/seed{seed}/prior_size.md",
        csv=report(
            "results/tables/{profile}/{split}/seed{seed}/prior_size.csv",
            caption="report/prior_size.rst",
            category="5. Tables",
            subcategory="{profile} · {split} · seed {seed}",
        ),
    log:
        "logs/make_tables/prior_size_{profile}_{split}_seed{seed}.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
    shell:
        "{params.py} stages/make_tables.py --prior-size"
        " --out results/tables/{wildcards.profile}/{wildcards.split}/seed{wildcards.seed} {input.metrics} 2> {log}"


# Low-data grid (method §2, 11.2; paper Fig. 3): the curves under params `lowdata` at the configured
# profile, each point an ordinary run (split <kind>-<F>) with each of `lowdata.seeds`.
#
#   snakemake --cores all lowdata --resources gpu=4      every curve: runs, then one plot per curve


rule lowdata:
    input:
        [f"results/lowdata/{config['profile']}/{c['dataset']}-{c['kind']}.png"
         for c in lowdata.curves(config, config["profile"])],


rule lowdata_curve:
    input:
        script="stages/lowdata_curve.py",
        code=closure.code_closure("stages/lowdata_curve.py"),
        metrics=lambda w: lowdata.curve_inputs(config, w.profile, w.dataset, w.kind),
    output:
        plot=report(
            "results/lowdata/{profile}/{dataset}-{kind}.png",
            caption="report/lowdata.rst",
            category="6. Low-data curves",
            subcategory="{profile}",
        ),
        points="results/lowdata/{profile}/{dataset}-{kind}-points.csv",
        summary="results/lowdata/{profile}/{dataset}-{kind}.md",
        summary_csv=report(
            "results/lowdata/{profile}/{dataset}-{kind}.csv",
            caption="report/lowdata_table.rst",
            category="6. Low-data curves",
            subcategory="{profile}",
        ),
    log:
        "logs/lowdata_curve/{profile}_{dataset}-{kind}.log",
    wildcard_constraints:
        kind="digit|sample|character|alphabet",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
    shell:
        "{params.py} stages/lowdata_curve.py --plot {output.plot} --points {output.points}"
        " --summary {output.summary} --summary-csv {output.summary_csv} {input.metrics} 2> {log}"


# Omniglot part-bank ablation (method §11.3): the parse PSNR of every K x M variant.
#
#   snakemake --cores all psnr_ablation


rule psnr_ablation:
    input:
        script="stages/psnr_ablation.py",
        code=closure.code_closure("stages/psnr_ablation.py"),
        metrics=expand(
            "results/omniglot/{profile}/full/seed{seed}/{variant}/metrics/parse.json",
            profile=config["profile"],
            seed=config["seed"],
            variant=wf.ABLATION_VARIANTS,
        ),
    output:
        table=f"results/tables/ablation_psnr_{config['profile']}_seed{config['seed']}.md",
        csv=f"results/tables/ablation_psnr_{config['profile']}_seed{config['seed']}.csv",
    log:
        f"logs/psnr_ablation/{config['profile']}_seed{config['seed']}.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
    shell:
        "{params.py} stages/psnr_ablation.py --out {output.table} --csv {output.csv} {input.metrics} 2> {log}"
