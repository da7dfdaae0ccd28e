# Evaluation (SPEC 10): domain feature extractor, cached test statistics, NLL / samples / FID.
# The feature extractor and the test statistics belong to a dataset and profile (results/<dataset>/
# <profile>/reference/), shared by every split, seed and variant, so that their FIDs compare.


rule train_classifier:
    input:
        script="stages/train_classifier.py",
        code=wf.code("features.py", "precision.py", "data/splits.py"),
        data="data/prepared/{dataset}",
    output:
        model="results/{dataset}/{profile}/reference/classifier.pt",
        metrics="results/{dataset}/{profile}/reference/classifier.json",
    log:
        "results/{dataset}/{profile}/reference/logs/train_classifier.log",
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.reference_params(config, "ds", "data", "classifier", *wf.NUMERICS),
    shell:
        "{params.py} stages/train_classifier.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --data {input.data} --out {output.model} --metrics {output.metrics}"
        " 2> {log}"


rule reference_stats:
    input:
        script="stages/reference_stats.py",
        code=wf.code("features.py", "precision.py", "data/splits.py"),
        data="data/prepared/{dataset}",
        classifier="results/{dataset}/{profile}/reference/classifier.pt",
    output:
        stats="results/{dataset}/{profile}/reference/stats.pt",
    log:
        "results/{dataset}/{profile}/reference/logs/reference_stats.log",
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.reference_params(config, "ds", "data", "evaluate"),
    shell:
        "{params.py} stages/reference_stats.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --data {input.data} --classifier {input.classifier}"
        " --out {output.stats} 2> {log}"


rule evaluate:
    input:
        script="stages/evaluate.py",
        code=wf.code("evaluate.py", "features.py", "model.py", "pixelcnn.py", "pixelvae.py", "distributed.py", "precision.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        model="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
        classifier="results/{dataset}/{profile}/reference/classifier.pt",
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
        gpu=GPUS,  # params compute.gpus: one leased GPU per process (npdraw.device)
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "ds", "evaluate", "pixelvae.nll_samples", *wf.NUMERICS),
    shell:
        "{params.py} stages/evaluate.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant {wildcards.variant} --data {input.data} --splits {input.splits}"
        " --model {input.model} --classifier {input.classifier} --reference {input.reference}"
        " --metrics {output.metrics} --samples {output.samples} --grid {output.grid}"
        " --figure {output.figure} 2> {log}"
