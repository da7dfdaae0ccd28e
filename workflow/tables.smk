# Results tables (SPEC 11.1, 12): read only the evaluation metrics files of the runs listed under
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
        code=wf.code("tables.py"),
        metrics=wf.table_inputs(config),
    output:
        table1="results/tables/{profile}/{split}/seed{seed}/table1.md",
        table1_csv="results/tables/{profile}/{split}/seed{seed}/table1.csv",
        table1_tex="results/tables/{profile}/{split}/seed{seed}/table1.tex",
        nll="results/tables/{profile}/{split}/seed{seed}/nll.md",
        nll_csv="results/tables/{profile}/{split}/seed{seed}/nll.csv",
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
