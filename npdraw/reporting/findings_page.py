"""The findings page's prose (results/findings/README.md): the metric cards, the verdicts of the current
campaign and of the retired one, the sample grids, what the runs cost.  Its numbers come from the
structures npdraw.reporting.findings builds; nothing here computes a statistic.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from npdraw.artifacts.io import atomic_path
from npdraw.reporting.statistics import ALPHA

# The page's neighbours in results/findings/ (their paths relative to it).
DISCUSSION = "discussion.md"    # hand-written; linked from the page when present
OVERVIEW = "lowdata/overview.md"   # Fig. 3 at a glance (npdraw.reporting.findings.overview)
VERDICTS = "verdicts.json"      # every verdict with every comparison it rests on, machine-readable
TUNING = "tuning.md"            # the learning-rate grid and the rate chosen for each system

RULE = (f"Two-sided t-tests over seeds: Welch's with two or more seeds a side; with one seed on a side, a t-test on "
        f"the pooled standard deviation of every group of the same measure in the claim, with that estimate's "
        f"degrees of freedom (no test where there is none). The p-values of one claim's comparisons are adjusted "
        f"together by Holm's step-down. A claim holds when every comparison it speaks of (by sample: more than "
        f"half) is significant at {ALPHA:g} after adjustment in the direction it predicts and none against it; "
        f"it does not hold when at least one is significant against it (by sample: at least half); otherwise "
        f"cannot tell. A group with a run whose domain FID lies below the real-image floor by more than the "
        f"floor's spread is flagged: the metric cannot rank it.")


def table2_title(campaign) -> str:
    return (f"Table 2 on Omniglot ({campaign.name} runs: {campaign.label}; {campaign.profile} profile, dvc "
            "experiments): one "
            "factor at a time from K = 5, M = 50, lambda = 50. Measured: mean over the seeds (sd where two or more), "
            "parse PSNR of the test images, domain FID of 2,000 samples against 2,000 test images (fid_domain_floor: "
            "real held-out images scored the same way; precision / recall in the same features, k = 3; "
            "classifier_accuracy: the validation accuracy of the network whose features the FID uses), "
            "importance-sampled NLL (S = 50, 1,000 test images), BCE and KL of the ELBO. paper_*: the paper's "
            "Table 2 (IWAE Omniglot, Inception FID): reported, not measured here.")


def _card_lines(dataset: str, card: dict) -> list[str]:
    net, floor = card["network"], card["floor"]
    lines = [f"**{dataset}**: {'passes' if card['passes'] else '**fails**'}. Network: {net['classes']:,} classes "
             f"({net['labels']}), validation accuracy {net['valid_accuracy']:.3f}, weights `features/{dataset}.pt` "
             f"(SHA-256 `{net['sha256'][:12]}`). Floor ({floor['source']}, {floor['draws']} draws of "
             f"{floor['images']:,}): FID {floor['fid']:.3f} ± {floor['fid_sd']:.3f}, precision "
             f"{floor['precision']:.2f}, recall {floor['recall']:.2f}. "
             f"[Picture](runs/{dataset}/findings/reference/card.png).", "",
             "| case | strength | FID | precision | recall |", "|---|---|---|---|---|"]
    for c in card["cases"]:
        strength = "" if c["strength"] is None else f"{c['strength']:g}"
        lines.append(f"| {c['what']} | {strength} | {c['fid']:.2f} | {c['precision']:.2f} | {c['recall']:.2f} |")
    lines += ["", "| check | result | numbers |", "|---|---|---|"]
    lines += [f"| {c['check']} | {'pass' if c['passes'] else '**fail**'} | {c['detail']} |" for c in card["checks"]]
    return lines + [""]


def _budget(verdict) -> str:
    """The runs behind a verdict in a few words: budget of image updates, seeds, the KL of each side."""
    if not verdict.comparisons:
        return "–"
    groups = {(c.a.name, c.a.point): c.a for c in verdict.comparisons} | {(c.b.name, c.b.point): c.b
                                                                          for c in verdict.comparisons}
    budgets = sorted({g.budget for g in groups.values() if g.budget is not None})
    seeds = sorted({len(g.values) for g in groups.values()})
    kls = {}
    for g in groups.values():
        if g.kl is not None:
            kls.setdefault(g.name, []).append(g.kl)
    kl = ", ".join(f"{name} {min(v):.1f}" + (f"-{max(v):.1f}" if max(v) - min(v) >= 0.05 else "")
                   for name, v in sorted(kls.items()))
    counts = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
    return f"{'/'.join(f'{b:,}' for b in budgets) or '?'} image updates; {counts} seeds a group; KL (nats): {kl}"


def _verdict_table(verdicts) -> list[str]:
    lines = ["| claim | verdict | runs | evidence | where |", "|---|---|---|---|---|"]
    for v in verdicts:
        flags = f" Flagged below the real-image floor (not tested): {'; '.join(v.flags)}." if v.flags else ""
        note = f" {v.note}." if v.note and v.comparisons else ""
        lines.append(f"| {v.claim} | **{v.verdict}** | {_budget(v)} | {v.evidence}{note}{flags} | {v.link} |")
    return lines + [""]


def _sample_grids(root: Path, runs: Path, findings: Path, profile: str = "findings") -> list[str]:
    """One row per point the verdicts judge, one picture per system: seed 0's samples (eval/samples.png,
    the selected checkpoint) at `profile`, committed beside the run's metrics."""
    grids = sorted((root / runs).glob(f"*/{profile}/*/seed0/*/samples.png"))
    if not grids:
        return ["No sample grid committed yet: the campaign commits each run's `eval/samples.png` beside its "
                "metrics.", ""]
    by_point: dict[tuple[str, str], dict[str, Path]] = {}
    for path in grids:
        dataset, split, variant = path.parts[-6], path.parts[-4], path.parts[-2]
        by_point.setdefault((dataset, split), {})[variant] = path
    variants = sorted({v for found in by_point.values() for v in found})
    lines = ["| point | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for (dataset, split), found in sorted(by_point.items()):
        cells = [f"![{v}]({found[v].relative_to(root / findings).as_posix()})" if v in found else "–" for v in variants]
        lines.append(f"| {dataset} {split} | " + " | ".join(cells) + " |")
    return lines + [""]


def _budget_lines(long, root: Path, findings: Path) -> list[str]:
    """Part 2: each claim's verdict at each budget side by side, then every verdict with its evidence."""
    campaigns, judged, counts = long
    done = sum(a for a, _ in counts.values())
    lines = ["## Verdicts at the paper's budget (part 2)", "",
             "Progress: " + "; ".join(f"{part} {a} of {b} runs" for part, (a, b) in counts.items()) + ". Runs: "
             + "; ".join(f"{c.name}: {c.label}" for c in campaigns) + ". Each run also scores the checkpoints "
             "that shorter runs would have kept, so one run gives the verdict of every budget below. The "
             "projected cost and the order of the runs: [budget/projection.md](budget/projection.md).", ""]
    budgets = list(judged)
    if not done:
        return lines + ["No run committed yet: `python scripts/campaign.py run --only budget`.", ""]
    by_claim: dict[str, dict[str, str]] = {}
    for b, verdicts in judged.items():
        for v in verdicts:
            by_claim.setdefault(v.claim, {})[b] = v.verdict
    lines += ["| claim | " + " | ".join(budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    lines += [f"| {claim} | " + " | ".join(f"**{cells.get(b, '–')}**" for b in budgets) + " |"
              for claim, cells in by_claim.items()]
    lines += ["", "Learning curves: " + ", ".join(sorted({v.link for vs in judged.values() for v in vs
                                                          if v.link.startswith("[")})) + ".", ""]
    for b, verdicts in judged.items():
        lines += [f"### At {b}", ""] + _verdict_table(verdicts)
    lines += ["### Samples at the paper's budget (seed 0, the selected checkpoint)", ""]
    return lines + _sample_grids(root, campaigns[0].runs, findings, campaigns[0].profile)


def write(path: Path, judged: dict, cards: dict, cfg, root: Path, timing: pd.DataFrame, gap: dict | None,
          progress: dict, long: tuple, waiting: tuple[str, ...] = ()) -> None:
    """The page `path` (results/findings/README.md under `root`): how the runs were made (`cfg`: the findings
    profile's resolved configuration), the metric cards, the verdicts of each campaign in `judged`
    ({Campaign: verdicts}, the current one first, then the retired one) with the current one's samples, the
    verdicts of part 2 at each budget (`long`: its Campaigns, the low-data one first, {budget: verdicts},
    {part: (runs committed, planned)}),
    the NLL gap; `waiting`: what the comparisons still wait for on the learning-rate grid (findings.untuned)."""
    (current, verdicts), (retired, old) = judged.items()
    findings = path.parent.relative_to(root)
    spent = timing.groupby("campaign")[["total", "runs"]].sum() if len(timing) else pd.DataFrame()

    def cost(name: str) -> str:
        done = "; ".join(f"{k} {a} of {b} runs" for k, (a, b) in progress[name].items())
        if name in spent.index:
            n = int(spent.loc[name, "runs"])
            done += (f". Measured wall time: {spent.loc[name, 'total']:.0f} minutes ({n} run{'s' if n != 1 else ''}, "
                     "one at a time on a 2-core CPU; [per model](minutes.md))")
        return done

    lines = [
        "# Findings: the paper's claims, re-run here",
        "",
        "Every number below is read from the metrics committed under [runs/](runs/) (each run's `eval.json`, with "
        "its provenance: code commit, params, libraries) and rebuilt by `python -m npdraw.reporting.findings`; "
        f"every verdict, with every comparison it rests on, is in [{VERDICTS}]({VERDICTS}). The runs are "
        "made by `python scripts/campaign.py run` through the pipeline's own front doors: the ablation as `dvc exp` "
        "experiments, the low-data grid by Snakemake, at the `findings` profile of params.yaml. Every system and "
        f"split sees the same {cfg.training.image_updates:,} training images in {cfg.training.rounds} rounds, the "
        f"checkpoint chosen by the FID of {cfg.data.max_valid_images:,} samples against the validation images "
        f"(every {cfg.training.select_every} rounds), the NLL with S = {cfg.evaluate.nll_samples} on the same "
        f"{cfg.evaluate.nll_images:,} test images and the domain FID of {cfg.evaluate.samples:,} samples against "
        f"{cfg.evaluate.fid_images:,} test images. The models are far smaller and shorter-trained than the paper's "
        "(a 2-core CPU); the verdicts are about the direction of each effect at this budget, not its size.",
        "",
        f"**The rule.** {RULE}",
        "",
        "## The metric: can the domain FID judge?",
        "",
        "Each dataset's domain FID uses a committed feature network (`features/<dataset>.json`, its weights' "
        "SHA-256 checked at every load). Its metric card scores known cases with the campaign's sample counts "
        "(`stages/metric_card.py`, method §14); the FIDs of the findings are judged only where the card passes.",
        "",
    ]
    for dataset, c in cards.items():
        lines += _card_lines(dataset, c)
    if not cards:
        lines += ["No metric card committed yet.", ""]
    if waiting:
        lines += [f"Every system's learning rate is chosen on the same grid ([{TUNING}]({TUNING})) before the runs "
                  f"that compare systems start; it waits for: {'; '.join(waiting)}.", ""]
    elif (path.parent / TUNING).is_file():
        lines += [f"Every system's learning rate was chosen on the same grid: [{TUNING}]({TUNING}).", ""]
    lines += ["## Verdicts: current runs", "", f"Progress: {cost(current.name)}. Runs: {current.label}.", ""]
    lines += _verdict_table(verdicts)
    lines += ["### Samples of every system at every point judged (seed 0, the selected checkpoint)", ""]
    lines += _sample_grids(root, current.runs, findings)
    if (path.parent / OVERVIEW).is_file():
        lines += [f"Fig. 3 at a glance, every point and model: [{OVERVIEW}]({OVERVIEW}).", ""]
    if (path.parent / DISCUSSION).is_file():
        lines += [f"What the verdicts say, and why some differ from the paper: [{DISCUSSION}]({DISCUSSION}).", ""]
    lines += _budget_lines(long, root, findings)
    lines += ["## Verdicts of the first campaign (retired metric)", "",
              f"{cost(retired.name)}. Runs: {retired.label}; their sample grids were not committed. These verdicts "
              "apply today's rule to the first campaign's numbers. Their FIDs cannot be compared with the current "
              "ones: the retired Omniglot floor was measured on the first 2,000 training images in stored order (a "
              "few alphabets), not on a random draw, and its features came from a network the card now replaces. "
              f"The first campaign's reading: [retired/{DISCUSSION}](retired/{DISCUSSION}); its tables: "
              "[retired/](retired/).", ""]
    lines += _verdict_table(old)
    if gap is not None:
        lines += ["## The reference model's NLL against the paper's 98.92", "", gap["summary"], "",
                  "[The measurements](nll_gap.md)."]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
