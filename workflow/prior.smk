# Transformer prior pre-trained on the heuristic parses (SPEC 7).


rule train_prior:
    input:
        script="stages/train_prior.py",
        code=wf.code("prior.py", "train_prior.py", "training.py", "canvas.py", "device.py", "distributed.py", "precision.py", "parse.py", "parts.py"),
        parses="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/parses.npz",
        bank="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/bank.npy",
    output:
        model="results/{dataset}/{profile}/{split}/seed{seed}/{variant}/prior/best.pt",
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
    resources:
        gpu=GPUS,  # params compute.gpus: one leased GPU per process (npdraw.device)
    threads: 16  # capped by --cores; torch uses them all
    conda:
        "envs/npdraw.yaml"
    params:
        py=PY,
        cfg=wf.stage_params(config, "ds", "prior", *wf.NUMERICS),
    shell:
        "{params.py} stages/train_prior.py --params params.yaml --dataset {wildcards.dataset}"
        " --profile {wildcards.profile} --split {wildcards.split} --seed {wildcards.seed}"
        " --variant {wildcards.variant} --parses {input.parses} --bank {input.bank}"
        " --out {output.model} --samples {output.samples} --metrics {output.metrics}"
        " --live {output.live} 2> {log}"
