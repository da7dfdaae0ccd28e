# Part bank and heuristic parsing (SPEC 3-5), per ablation variant.


rule build_bank:
    input:
        script="stages/build_bank.py",
        code=wf.code("parts.py", "canvas.py", "data/splits.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
    output:
        bank="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.npy",
        picture=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.png",
            caption="report/bank.rst",
            category="1. Parts and parses",
            subcategory=RUN_LABEL,
        ),
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/bank.json",
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/build_bank.log",
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "ds", "bank"),
    shell:
        "{params.py} stages/build_bank.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant {wildcards.variant} --data {input.data} --splits {input.splits}"
        " --out {output.bank} --picture {output.picture} --metrics {output.metrics} 2> {log}"


rule parse:
    input:
        script="stages/parse.py",
        code=wf.code("parse.py", "canvas.py", "data/splits.py", "parts.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        bank="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.npy",
    output:
        parses="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parses.npz",
        picture=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parse.png",
            caption="report/parse.rst",
            category="1. Parts and parses",
            subcategory=RUN_LABEL,
        ),
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/parse.json",
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/parse.log",
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "ds", "parse"),
    shell:
        "{params.py} stages/parse.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant {wildcards.variant} --data {input.data} --splits {input.splits}"
        " --bank {input.bank} --out {output.parses} --picture {output.picture}"
        " --metrics {output.metrics} 2> {log}"


rule psnr_ablation:
    input:
        f"results/tables/ablation_psnr_{config['profile']}_seed{config['seed']}.md",


rule psnr_ablation_table:
    input:
        expand(
            "results/omniglot/{{profile}}/full/seed{{seed}}/{variant}/metrics/parse.json",
            variant=wf.ABLATION_VARIANTS,
        ),
    output:
        table="results/tables/ablation_psnr_{profile}_seed{seed}.md",
        csv="results/tables/ablation_psnr_{profile}_seed{seed}.csv",
    log:
        "logs/psnr_ablation/{profile}_seed{seed}.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
    shell:
        "{params.py} stages/psnr_table.py --params params.yaml --out {output.table}"
        " --csv {output.csv} {input} 2> {log}"
