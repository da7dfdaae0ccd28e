# GENERATED from npdraw/workflow/stages.py (the stage table): do not edit; regenerate with
#   python -m npdraw.workflow.generate --write
# The per-run stages, one rule each; dvc.yaml holds the same stages.  Written out rather than made in
# a loop: Snakemake runs a loop-made rule with the last iteration's shell command (snakemake#2832).
# Their code dependencies are computed when the Snakefile is read (closure.code_closure; for a run's
# stages, of the system its variant selects: wf.variant_code).



rule prepare_data:
    input:
        script="stages/prepare_data.py",
        code=closure.code_closure("stages/prepare_data.py"),
    output:
        out=directory("data/prepared/{dataset}"),
    log:
        "logs/prepare_data/{dataset}.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("prepare_data")),
    shell:
        "{params.py} stages/prepare_data.py --params params.yaml --dataset {wildcards.dataset} "
        "--out {output.out} 2> {log}"


rule make_splits:
    input:
        script="stages/make_splits.py",
        code=closure.code_closure("stages/make_splits.py"),
        data="data/prepared/{dataset}",
    output:
        out="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        summary="results/{dataset}/{profile}/{split}/seed{seed}/splits.json",
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/logs/make_splits.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("make_splits")),
    shell:
        "{params.py} stages/make_splits.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} --data {input.data} "
        "--out {output.out} --summary {output.summary} 2> {log}"


rule build_bank:
    input:
        script="stages/build_bank.py",
        code=wf.variant_code("stages/build_bank.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
    output:
        out="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.npy",
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
        cfg=wf.stage_params(config, stage_table.stage("build_bank")),
    shell:
        "{params.py} stages/build_bank.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --data {input.data} --splits {input.splits} --out {output.out} "
        "--picture {output.picture} --metrics {output.metrics} 2> {log}"


rule parse:
    input:
        script="stages/parse.py",
        code=wf.variant_code("stages/parse.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        bank="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.npy",
    output:
        out="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parses.npz",
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
        cfg=wf.stage_params(config, stage_table.stage("parse")),
    shell:
        "{params.py} stages/parse.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --data {input.data} --splits {input.splits} --bank {input.bank} "
        "--out {output.out} --picture {output.picture} --metrics {output.metrics} 2> {log}"


rule train_prior:
    input:
        script="stages/train_prior.py",
        code=wf.variant_code("stages/train_prior.py"),
        parses="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parses.npz",
        bank="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.npy",
    output:
        out="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/prior/best.pt",
        samples=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/prior/samples.png",
            caption="report/prior_samples.rst",
            category="2. Prior",
            subcategory=RUN_LABEL,
        ),
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/prior.json",
        live=directory("results/{dataset}/{profile}/{split}/seed{seed}/{variant}/prior/live"),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/train_prior.log",
    threads: 16  # capped by --cores; torch uses them all
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("train_prior")),
    shell:
        "{params.py} stages/train_prior.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --parses {input.parses} --bank {input.bank} --out {output.out} "
        "--samples {output.samples} --metrics {output.metrics} --live {output.live} 2> {log}"


rule train_model:
    input:
        script="stages/train_model.py",
        code=wf.variant_code("stages/train_model.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        parses="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parses.npz",
        prior="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/prior/best.pt",
        classifier="features/{dataset}.json",
    output:
        out="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
        reconstructions=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/reconstructions.png",
            caption="report/reconstructions.rst",
            category="3. Model",
            subcategory=RUN_LABEL,
        ),
        milestones="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/milestones.pt",
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/model.json",
        live=directory("results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/live"),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/train_model.log",
    threads: 16  # capped by --cores; torch uses them all
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("train_model")),
    shell:
        "{params.py} stages/train_model.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --data {input.data} --splits {input.splits} --parses {input.parses} "
        "--prior {input.prior} --classifier {input.classifier} --out {output.out} "
        "--reconstructions {output.reconstructions} --milestones {output.milestones} "
        "--metrics {output.metrics} --live {output.live} 2> {log}"


rule train_baseline:
    input:
        script="stages/train_baseline.py",
        code=wf.variant_code("stages/train_baseline.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        classifier="features/{dataset}.json",
    output:
        out="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
        reconstructions=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/reconstructions.png",
            caption="report/reconstructions.rst",
            category="3. Model",
            subcategory=RUN_LABEL,
        ),
        milestones="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/milestones.pt",
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/model.json",
        live=directory("results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/live"),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/train_baseline.log",
    wildcard_constraints:
        variant="(pixelvae|vae|draw)(-lr[0-9.]+)?",
    threads: 16  # capped by --cores; torch uses them all
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("train_baseline")),
    shell:
        "{params.py} stages/train_baseline.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --data {input.data} --splits {input.splits} "
        "--classifier {input.classifier} --out {output.out} --reconstructions {output.reconstructions} "
        "--milestones {output.milestones} --metrics {output.metrics} --live {output.live} 2> {log}"


rule edit_latents:
    input:
        script="stages/edit_latents.py",
        code=wf.variant_code("stages/edit_latents.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        model="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
    output:
        out=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/figures/latent_edit.png",
            caption="report/latent_edit.rst",
            category="3. Model",
            subcategory=RUN_LABEL,
        ),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/edit_latents.log",
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("edit_latents")),
    shell:
        "{params.py} stages/edit_latents.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --data {input.data} --splits {input.splits} --model {input.model} "
        "--out {output.out} 2> {log}"


rule reference_stats:
    input:
        script="stages/reference_stats.py",
        code=closure.code_closure("stages/reference_stats.py"),
        data="data/prepared/{dataset}",
        classifier="features/{dataset}.json",
    output:
        out="results/{dataset}/{profile}/reference/stats.pt",
    log:
        "results/{dataset}/{profile}/reference/logs/reference_stats.log",
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("reference_stats")),
    shell:
        "{params.py} stages/reference_stats.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --data {input.data} --classifier {input.classifier} --out {output.out} "
        "2> {log}"


rule metric_card:
    input:
        script="stages/metric_card.py",
        code=closure.code_closure("stages/metric_card.py"),
        data="data/prepared/{dataset}",
        classifier="features/{dataset}.json",
        reference="results/{dataset}/{profile}/reference/stats.pt",
    output:
        metrics="results/{dataset}/{profile}/reference/card.json",
        picture=report(
            "results/{dataset}/{profile}/reference/card.png",
            caption="report/metric_card.rst",
            category="4. Samples",
            subcategory=PROFILE_LABEL,
        ),
    log:
        "results/{dataset}/{profile}/reference/logs/metric_card.log",
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("metric_card")),
    shell:
        "{params.py} stages/metric_card.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --data {input.data} --classifier {input.classifier} "
        "--reference {input.reference} --metrics {output.metrics} --picture {output.picture} 2> {log}"


rule evaluate:
    input:
        script="stages/evaluate.py",
        code=wf.variant_code("stages/evaluate.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        model="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
        milestones="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/milestones.pt",
        classifier="features/{dataset}.json",
        reference="results/{dataset}/{profile}/reference/stats.pt",
    output:
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/eval.json",
        samples="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/eval/samples.npz",
        grid=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/eval/samples.png",
            caption="report/samples.rst",
            category="4. Samples",
            subcategory=RUN_LABEL,
        ),
        figure=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/figures/canvases_and_samples.png",
            caption="report/canvases_and_samples.rst",
            category="4. Samples",
            subcategory=RUN_LABEL,
        ),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/evaluate.log",
    threads: 16  # capped by --cores; torch uses them all
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, stage_table.stage("evaluate")),
    shell:
        "{params.py} stages/evaluate.py --params params.yaml --dataset {wildcards.dataset} "
        "--profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed} "
        "--variant {wildcards.variant} --data {input.data} --splits {input.splits} --model {input.model} "
        "--milestones {input.milestones} --classifier {input.classifier} --reference {input.reference} "
        "--metrics {output.metrics} --samples {output.samples} --grid {output.grid} --figure {output.figure} "
        "2> {log}"


# The baselines' trainer writes the model of the variant that is a baseline's name, which
# train_model's pattern matches too.
ruleorder: train_baseline > train_model
