"""Print where the configured run's outputs are, with its headline numbers (end of `make run`)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from npdraw.reporting.tables import domain_columns
from npdraw.workflow.params import load_params
from npdraw.workflow.paths import CURVES
from npdraw.workflow.resolve import resolve
from npdraw.workflow.snakemake import system_stages
from npdraw.workflow.stages import output, trainer

# What the summary lists, in order: label -> (stage, its output flag) in the stage table.
LISTED = {"part bank picture": ("build_bank", "picture"), "parsed canvases": ("parse", "picture"),
          "parse metrics": ("parse", "metrics"), "bank metrics": ("build_bank", "metrics"),
          "prior samples": ("train_prior", "samples"), "prior metrics": ("train_prior", "metrics"),
          "reconstructions": ("train_model", "reconstructions"), "model metrics": ("train_model", "metrics"),
          "latent editing": ("edit_latents", "out"), "evaluation": ("evaluate", "metrics"),
          "samples": ("evaluate", "grid"), "canvases, samples": ("evaluate", "figure")}


def read_json(path: str) -> dict | None:
    """A metrics file's contents, or None when the stage has not produced it yet."""
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None


def run_paths(cfg) -> dict[str, str]:
    """label -> path of what the configured run produces (LISTED, for its system), and its curves."""
    ran = {s.name for s in system_stages(cfg.variant)}
    model_stage = trainer(cfg.system).name
    paths = {label: output(model_stage if stage == "train_model" else stage, flag, cfg)
             for label, (stage, flag) in LISTED.items() if stage in ran or stage == "train_model"}
    paths["training curves"] = CURVES.format(**cfg)
    return paths


def headline(config: dict) -> dict:
    """The report's landing page (workflow/report/workflow.rst): the configured run's name, its
    headline numbers as (measure, value) rows read from its metrics files (what is missing is left
    out), and its canvases-and-samples figure as a data URI (None until the run has one)."""
    cfg = resolve(config)
    paths = run_paths(cfg)
    rows: list[tuple[str, str]] = []
    e, m = read_json(paths["evaluation"]), read_json(paths["model metrics"])
    if e is not None:
        nll = f"{e['bits_per_dim']:.3f} bits/dim" if "bits_per_dim" in e else f"{e['nll_nats']:.2f} nats"
        rows.append(("test NLL", f"{nll} (importance sampled, S = {e['nll_samples']}, {e['nll_images']} images)"))
        rows.append(("test ELBO (BCE, KL)", f"{e['elbo_nats']:.2f} nats ({e['bce_nats']:.2f}, {e['kl_nats']:.2f})"))
        floors = {"fid_domain": domain_columns(e)["fid_domain_floor"], "fid": None}   # Inception: no floor
        for label, key in (("domain FID", "fid_domain"), ("Inception FID", "fid")):
            if e.get(key) is not None:
                real = f"real images: {floors[key]:.2f}; " if floors[key] is not None else ""
                rows.append((label, f"{e[key]:.2f} ({real}{e['generated']} samples vs "
                                    f"{e['fid_reference_images']} test images)"))
        rows.append(("checkpoint", f"epoch {e.get('selected_epoch')}, chosen by {e.get('selected_by')}"))
        rows.append(("precision", e["provenance"]["numerics"]["precision"]))
    if (p := read_json(paths.get("parse metrics", ""))) is not None:
        rows.append(("parse PSNR (test)", f"{p['psnr_db']:.2f} dB"))
    if (pr := read_json(paths.get("prior metrics", ""))) is not None:
        rows.append(("prior NLL of the parses (test)", f"{pr['nll_nats']:.2f} nats, {pr['epochs']} epochs"))
    if m is not None:
        minutes = sum(h["seconds"] for h in m["history"]) / 60
        rows.append(("model training", f"{m['epochs']} epochs, {minutes:.1f} min, "
                                       f"{m['train_images_per_s']:.0f} images/s"))
    figure = Path(paths["canvases, samples"])
    uri = None
    if figure.is_file():   # reStructuredText caps a line's length; an image URI may continue on indented lines
        encoded = "data:image/png;base64," + base64.b64encode(figure.read_bytes()).decode()
        uri = "\n   ".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    return {"run": f"{cfg.dataset} · {cfg.profile} · {cfg.split} · seed {cfg.seed} · {cfg.variant}",
            "rows": rows, "figure": uri}


def summary(params_path: str = "params.yaml") -> str:
    cfg = resolve(load_params(params_path))
    paths = run_paths(cfg)
    lines = [f"npdraw run: dataset={cfg.dataset} profile={cfg.profile} split={cfg.split} "
             f"seed={cfg.seed} variant={cfg.variant}"]
    for label, path in paths.items():
        mark = "" if Path(path).exists() else "   (missing: run `make run`)"
        lines.append(f"  {label:<18} {path}{mark}")
    if (m := read_json(paths.get("parse metrics", ""))) is not None:
        lines.append(f"  parse PSNR (test)  {m['psnr_db']:.2f} dB over {m['test']['images']} images, "
                     f"{m['test']['draw_rate']:.1%} of cells drawn")
    if (b := read_json(paths.get("bank metrics", ""))) is not None:
        lines.append(f"  part bank          M={b['bank_size']} K={b['patch_size']}, k-medoids {b['method']} "
                     f"objective {b['objective']:.1f} on {b['points']} patches, {b['seconds_total']:.1f} s")
    if (p := read_json(paths.get("prior metrics", ""))) is not None:
        lines.append(f"  prior NLL (test)   {p['nll_nats']:.2f} nats per parse (uniform bound "
                     f"{p['uniform_bound_nats']:.0f}); best epoch {p['best_epoch']} of {p['epochs']}")
    if (m := read_json(paths["model metrics"])) is not None:
        lines.append(f"  model (test)       ELBO {m['elbo_nats']:.2f} nats (BCE {m['bce_nats']:.2f}, KL "
                     f"{m['kl_nats']:.2f}), one sample per image; {m['epoch_seconds']:.0f} s per epoch")
    if (e := read_json(paths["evaluation"])) is not None:
        nll = (f"{e['bits_per_dim']:.3f} bits/dim" if "bits_per_dim" in e else f"{e['nll_nats']:.2f} nats")
        lines.append(f"  NLL (test)         {nll}, importance sampled with S={e['nll_samples']} on "
                     f"{e['nll_images']} of {e['test_images']} test images")
        if "static_binarized_test" in e:
            st = e["static_binarized_test"]
            lines.append(f"  NLL (static MNIST) {st['nll_nats']:.2f} nats on {st['images']} images of Larochelle's "
                         f"binarized test set")
        # eval.json says fid: null (and why, under "inception") when the optional Inception network is absent.
        fid = (f"FID (Inception) {e['fid']:.2f}; " if e.get("fid") is not None
               else "FID (Inception) not computed (the optional torch-fidelity extra); ")
        domain = ("domain FID n/a (no labels)" if e.get("fid_domain") is None else
                  f"domain FID {e['fid_domain']:.3f} (real images: {domain_columns(e)['fid_domain_floor']:.3f}), "
                  f"KID {e['kid_domain']:.4f}" + ("" if e.get("precision_domain") is None else
                                                  f", precision {e['precision_domain']:.2f}, recall "
                                                  f"{e['recall_domain']:.2f}"))
        lines.append(f"  FID                {fid}{domain} "
                     f"({e['generated']} samples vs {e['fid_reference_images']} test images)")
    lines += _collections(cfg)
    return "\n".join(lines)


REPORT = "results/report.html"


def _collections(cfg) -> list[str]:
    """The report, tables and low-data curves: where they are, or the command that builds them."""
    tables = f"results/tables/{cfg.profile}/{cfg.split}/seed{cfg.seed}"
    ablation = f"results/tables/ablation_omniglot_{cfg.profile}_seed{cfg.seed}.md"
    curves = [f"results/lowdata/{cfg.profile}/{c['dataset']}-{c['kind']}.png" for c in cfg.lowdata["curves"]]
    entries = [("HTML report", REPORT, "snakemake --report " + REPORT),
               ("Table 1", f"{tables}/table1.md", "snakemake --cores all tables"),
               ("NLL table", f"{tables}/nll.md", "snakemake --cores all tables"),
               ("ablation table", ablation, f"python scripts/dvc_ablation.py --profile {cfg.profile}"),
               *(("low-data curve", c, "snakemake --cores all lowdata") for c in curves)]
    lines = []
    for label, path, command in entries:
        mark = "" if Path(path).exists() else f"   (not built: `{command}`)"
        lines.append(f"  {label:<18} {path}{mark}")
    return lines


if __name__ == "__main__":
    print(summary(sys.argv[1] if len(sys.argv) > 1 else "params.yaml"))
