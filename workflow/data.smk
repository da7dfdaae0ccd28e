# Data preparation and splits (SPEC 2).


rule prepare_data:
    input:
        script="stages/prepare_data.py",
        code=wf.code("data/prepare.py", "data/formats.py", "data/sources.py"),
    output:
        directory("data/prepared/{dataset}"),
    log:
        "logs/prepare_data/{dataset}.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=lambda w: config["datasets"][w.dataset],
    shell:
        "{params.py} stages/prepare_data.py --params params.yaml --dataset {wildcards.dataset}"
        " --out {output} 2> {log}"


rule make_splits:
    input:
        script="stages/make_splits.py",
        code=wf.code("data/splits.py"),
        data="data/prepared/{dataset}",
    output:
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        summary="results/{dataset}/{profile}/{split}/seed{seed}/splits.json",
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/logs/make_splits.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "data"),
    shell:
        "{params.py} stages/make_splits.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --data {input.data} --out {output.splits} --summary {output.summary} 2> {log}"
