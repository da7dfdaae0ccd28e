# The full model: encoder and decoder trained around the frozen prior (SPEC 8-9).


rule train_model:
    input:
        script="stages/train_model.py",
        code=wf.code("model.py", "pixelcnn.py", "train_model.py", "training.py", "canvas.py", "device.py",
                     "distributed.py", "precision.py", "parse.py", "data/splits.py", "prior.py", "train_prior.py",
                     "evaluate.py", "features.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        parses="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parses.npz",
        prior="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/prior/best.pt",
        classifier="results/{dataset}/{profile}/reference/classifier.pt",
    output:
        model="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
        reconstructions=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/reconstructions.png",
            caption="report/reconstructions.rst",
            category="3. Model",
            subcategory=RUN_LABEL,
        ),
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/model.json",
        live=directory("results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/live"),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/logs/train_model.log",
    threads: 16  # capped by --cores; torch uses them all
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process (npdraw.device)
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "ds", "model", *wf.MODEL_SELECTION, *wf.NUMERICS),
    shell:
        "{params.py} stages/train_model.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant {wildcards.variant} --data {input.data} --splits {input.splits}"
        " --parses {input.parses} --prior {input.prior} --classifier {input.classifier} --out {output.model}"
        " --reconstructions {output.reconstructions} --metrics {output.metrics}"
        " --live {output.live} 2> {log}"


rule edit_latents:
    input:
        script="stages/edit_latents.py",
        code=wf.code("editing.py", "model.py", "canvas.py", "precision.py", "data/splits.py", "train_model.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
        model="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/model/best.pt",
    output:
        figure=report(
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
        cfg=wf.stage_params(config, "ds"),
    shell:
        "{params.py} stages/edit_latents.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant {wildcards.variant} --data {input.data} --splits {input.splits}"
        " --model {input.model} --out {output.figure} 2> {log}"


# The PixelVAE baseline (SPEC 12): the variant `pixelvae` of a run, trained on the same splits and
# scored by the same `evaluate` rule.  It needs no bank, parses or prior.
ruleorder: train_pixelvae > train_model


rule train_pixelvae:
    input:
        script="stages/train_pixelvae.py",
        code=wf.code("pixelvae.py", "pixelcnn.py", "train_pixelvae.py", "training.py", "device.py",
                     "distributed.py", "precision.py", "data/splits.py"),
        data="data/prepared/{dataset}",
        splits="results/{dataset}/{profile}/{split}/seed{seed}/splits.npz",
    output:
        model="results/{dataset}/{profile}/{split}/seed{seed}/pixelvae/model/best.pt",
        reconstructions=report(
            "results/{dataset}/{profile}/{split}/seed{seed}/pixelvae/model/reconstructions.png",
            caption="report/reconstructions.rst",
            category="3. Model",
            subcategory=RUN_LABEL.replace("{variant}", "pixelvae"),
        ),
        metrics="results/{dataset}/{profile}/{split}/seed{seed}/pixelvae/metrics/model.json",
        live=directory("results/{dataset}/{profile}/{split}/seed{seed}/pixelvae/model/live"),
    log:
        "results/{dataset}/{profile}/{split}/seed{seed}/pixelvae/logs/train_pixelvae.log",
    threads: 16  # capped by --cores; torch uses them all
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process (npdraw.device)
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "ds", "pixelvae", *wf.NUMERICS),
    shell:
        "{params.py} stages/train_pixelvae.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant pixelvae --data {input.data} --splits {input.splits} --out {output.model}"
        " --reconstructions {output.reconstructions} --metrics {output.metrics}"
        " --live {output.live} 2> {log}"
