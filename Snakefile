# npdraw workflow: table of contents.  One thin rule per stage; the stages are
# the CLIs in stages/, the logic is in npdraw/.  dvc.yaml declares the same
# stages for `dvc repro` (tests/test_workflow.py fails if the two drift).
#
#   snakemake --cores all                          default run of params.yaml
#   snakemake --cores all --config dataset=omniglot profile=smoke
#   snakemake --cores all --until parse            stop after a stage
#   snakemake --cores all psnr_ablation            Omniglot K x M PSNR table
#   snakemake --cores all tables                   Table 1 and the NLL table (params `tables.runs`)

include: "workflow/common.smk"
include: "workflow/data.smk"
include: "workflow/parts.smk"
include: "workflow/prior.smk"
include: "workflow/model.smk"
include: "workflow/evaluate.smk"
include: "workflow/tables.smk"
include: "workflow/report.smk"


rule all:
    input:
        wf.targets(config),
    default_target: True
