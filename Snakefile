# npdraw workflow: table of contents.  The per-run stages are the CLIs in stages/, the logic is
# in npdraw/; their rules are generated from the stage table (npdraw/workflow/stages.py), which also
# generates dvc.yaml, so the two engines cannot drift.  The gathering rules (tables, low-data
# curves, report pictures) are written here.
#
#   snakemake --cores all                          default run of params.yaml
#   snakemake --cores all --config dataset=omniglot profile=smoke
#   snakemake --cores all --until parse            stop after a stage
#   snakemake --cores all psnr_ablation            Omniglot K x M PSNR table
#   snakemake --cores all tables                   Table 1 and the NLL table (params `tables.runs`)

include: "workflow/common.smk"
include: "workflow/stages.smk"
include: "workflow/tables.smk"
include: "workflow/report.smk"


rule all:
    input:
        wf.targets(config),
    default_target: True
