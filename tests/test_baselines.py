"""Every system meets the model interface; the baselines (VAE, DRAW, PixelVAE) learn, give valid bounds,
refuse each other's checkpoints; DRAW's attention reads and writes where its filters say; and a new
baseline is one module, one registry entry and one params section."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from npdraw.artifacts.errors import CheckpointError
from npdraw.evaluation.importance import generate, importance_sampled
from npdraw.models.checkpoints import load_model, save_model
from npdraw.models.draw import DRAW, DRAWConfig, filterbank, read_glimpse, write_patch
from npdraw.models.interface import GenerativeModel, model_class
from npdraw.models.prior import Prior, prior_config
from npdraw.parts.canvas import Grid
from npdraw.workflow.systems import BASELINES, SYSTEMS
from tests.conftest import stage_env, venv_bin


def baseline(make_cfg, name, dataset="mnist", **section):
    """A baseline at the smoke profile's sizes (params.yaml: the tests' tiny models are CI's), `section`
    overriding its params section's values."""
    cfg = make_cfg(dataset=dataset, profile="smoke")
    cfg[SYSTEMS[name].section].update(section)
    cfg["system"], cfg["variant"] = name, name
    torch.manual_seed(0)
    return cfg, model_class(name).build(cfg)


def digits(n=12, seed=0):
    """Binary images with some structure (a bar whose position varies), (n, 1, 28, 28)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    for i, row in enumerate(torch.randint(4, 24, (n,), generator=g).tolist()):
        x[i, 0, row - 2:row + 2, 6:22] = 1.0
    return x


def test_every_system_meets_the_interface(make_cfg, params):
    """Each registry entry's class is a GenerativeModel whose checkpoint kind is the system's name,
    built from a run's configuration with the architecture that configuration gives."""
    for name in SYSTEMS:
        cls = model_class(name)
        assert cls.kind == name and issubclass(cls, torch.nn.Module)
    for name in BASELINES:
        cfg, model = baseline(make_cfg, name)
        assert isinstance(model, GenerativeModel) and model.cfg.to_dict() == type(model).arch(cfg)
    cfg = make_cfg(dataset="mnist", profile="smoke")
    grid = Grid.for_dataset(cfg.ds)
    prior = Prior(prior_config(cfg, grid), torch.rand(cfg.ds.bank_size, 1, 5, 5), grid)
    assert isinstance(model_class("npdraw").build(cfg, prior), GenerativeModel)


def fit(model, steps: int = 40) -> list[float]:
    """A few Adam steps on the ELBO of a small batch; the losses."""
    x = digits()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        t = model.terms(x, x)
        assert t["log_px"].shape == t["kl"].shape == (len(x),)
        loss = -(t["log_px"] - t["kl"]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", BASELINES)
def test_training_loss_goes_down_on_a_small_batch(make_cfg, name):
    losses = fit(baseline(make_cfg, name)[1])
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", BASELINES)
def test_the_bound_is_valid_and_tightens_with_more_samples(make_cfg, name):
    """S = 1: the NLL estimate is minus the one-sample ELBO, image by image, and its mean over many
    draws is the ELBO the model reports with its analytic KL; the bound rises with S on a fixed image."""
    cfg, model = baseline(make_cfg, name)
    with torch.no_grad():   # q's mean away from the prior's: the samples' weights then differ
        model.to_q.bias[:model.cfg.latent].fill_(1.5)
    model.eval()
    x = digits(3)
    one = importance_sampled(model, x, 1, seed=1, progress=False)
    torch.testing.assert_close(torch.from_numpy(one["nll_nats"]), torch.from_numpy(-one["elbo_nats"]))
    draws = 400 if name != "pixelvae" else 100
    w = model.log_weights(x[:1], x[:1], draws, torch.Generator().manual_seed(2))
    mc = (w["log_px"] + w["log_pz"] - w["log_qz"]).double()
    g = torch.Generator().manual_seed(3)
    analytic = torch.stack([(lambda t: t["log_px"] - t["kl"])(model.terms(x[:1], x[:1], generator=g))
                            for _ in range(draws)]).double()
    assert abs(mc.mean() - analytic.mean()) < 4 * (mc.std() / draws ** 0.5) + 0.05
    bounds = {s: -importance_sampled(model, x[:1].expand(20, -1, -1, -1), s, seed=4, progress=False)["nll_nats"].mean()
              for s in (1, 10, 50)}
    assert bounds[1] < bounds[10] < bounds[50]


@pytest.mark.parametrize("name", BASELINES)
def test_samples_and_checkpoints(make_cfg, tmp_path, name):
    """Samples are binary images of the dataset's shape; a checkpoint rebuilds the same model, and one
    of another system, or of another configuration, is refused by name."""
    cfg, model = baseline(make_cfg, name)
    gen = generate(model, 3, seed=0, batch_size=3, progress=False)
    assert gen["images"].shape == (3, 1, 28, 28) and set(gen["images"].unique().tolist()) <= {0.0, 1.0}
    assert model.reconstruct(digits(2)).shape == (2, 1, 28, 28)
    save_model(tmp_path / "best.pt", model, {"epoch": 1})
    back = load_model(tmp_path / "best.pt", "cpu", cfg)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    other = next(n for n in BASELINES if n != name)
    other_cfg, _ = baseline(make_cfg, other)
    with pytest.raises(CheckpointError, match=f"a {name} checkpoint, expected a {other} checkpoint"):
        load_model(tmp_path / "best.pt", "cpu", other_cfg)
    bigger, _ = baseline(make_cfg, name, latent=cfg[SYSTEMS[name].section].latent + 1)
    with pytest.raises(CheckpointError, match="another configuration"):
        load_model(tmp_path / "best.pt", "cpu", bigger)


def test_draw_read_with_an_identity_filter_bank_returns_the_image():
    """A 28 x 28 read grid with stride 1 centred on the image and a tiny variance is the identity; a 5 x 5
    grid centred on pixel (row 10, column 20) (1-based) reads the patch around it."""
    x = torch.rand(2, 28, 28)
    params = torch.tensor([[0.0, 0.0, -12.0, 0.0, 0.0]]).expand(2, 5)   # gx~, gy~, log var, log delta~, log gamma
    f_x, f_y, gamma = filterbank(params, 28, 28, 28)
    torch.testing.assert_close(read_glimpse(x, f_x, f_y), x, rtol=0, atol=1e-5)
    assert torch.equal(gamma, torch.ones(2))
    # Centre (g_X, g_Y) = (20, 10): gx~ = 2 g_X / (W + 1) - 1; stride 1: delta~ = (N - 1) / (max(W, H) - 1).
    gx, gy, delta = 2 * 20 / 29 - 1, 2 * 10 / 29 - 1, torch.tensor(4 / 27).log().item()
    f_x, f_y, _ = filterbank(torch.tensor([[gx, gy, -12.0, delta, 0.0]]).expand(2, 5), 5, 28, 28)
    torch.testing.assert_close(read_glimpse(x, f_x, f_y), x[:, 7:12, 17:22], rtol=0, atol=1e-4)


def test_draw_write_lands_where_its_centre_says():
    """A 3 x 3 patch of ones written with stride 1 and a tiny variance, centred on pixel (row 7, column 20)
    (1-based), fills exactly rows 6-8 and columns 19-21 of the canvas."""
    gx, gy, delta = 2 * 20 / 29 - 1, 2 * 7 / 29 - 1, torch.tensor(2 / 27).log().item()
    f_x, f_y, gamma = filterbank(torch.tensor([[gx, gy, -12.0, delta, 0.0]]), 3, 28, 28)
    canvas = write_patch(torch.ones(1, 3, 3), f_x, f_y)[0] / gamma[0]
    expected = torch.zeros(28, 28)
    expected[5:8, 18:21] = 1.0
    torch.testing.assert_close(canvas, expected, rtol=0, atol=1e-4)


def test_draw_without_attention_and_with_the_papers_sizes():
    """The read is the whole image and its error without attention; the paper's MNIST setting builds."""
    plain = DRAW(DRAWConfig(steps=3, hidden=8, latent=2, attention=False))
    assert plain.enc.input_size == 2 * 784 + 8 and plain.to_patch.out_features == 784
    paper = DRAW(DRAWConfig())
    c = paper.cfg
    assert (c.steps, c.hidden, c.latent, c.read, c.write) == (64, 256, 100, 2, 5)
    assert paper.enc.input_size == 2 * 2 * 2 + 256 and paper.to_patch.out_features == 25


def test_draw_log_weights_are_the_same_whatever_the_samples_per_pass(make_cfg):
    cfg, model = baseline(make_cfg, "draw")
    x = digits(2)
    one = model.log_weights(x, x, 4, torch.Generator().manual_seed(5), per_pass=1)
    four = model.log_weights(x, x, 4, torch.Generator().manual_seed(5), per_pass=4)
    for key in one:
        torch.testing.assert_close(one[key], four[key], rtol=1e-4, atol=1e-3)


def test_baselines_refuse_data_their_architecture_does_not_take(params):
    from npdraw.artifacts.errors import ParamsError
    from npdraw.workflow.resolve import resolve
    for name in BASELINES:
        with pytest.raises(ParamsError, match=f"variant '{name}'"):
            resolve(params, dataset="cifar10", profile="smoke", variant=name)


TOY_MODULE = '''\
"""A toy baseline for the recipe test: one Gaussian latent, linear encoder and decoder."""
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from npdraw.models.vae import BernoulliPixels, GaussianVAE


@dataclass(frozen=True)
class ToyConfig:
    latent: int = 2

    def to_dict(self):
        return asdict(self)


class Toy(GaussianVAE):
    kind = "toy"
    Config = ToyConfig
    sample_description = "z ~ N(0, I) -> Bernoulli pixels"

    def make_output(self, cfg):
        return BernoulliPixels(32)

    def logit_layers(self):
        return (self.output.out,)
'''


@pytest.mark.slow
def test_a_new_baseline_is_a_module_a_registry_entry_and_a_params_section(repo_copy):
    """The README's recipe, followed in a copy of the project: the three places, the one regenerate
    command, then Snakemake trains and evaluates the new system at tiny size."""
    (repo_copy / "npdraw/models/toy.py").write_text(TOY_MODULE)
    systems = repo_copy / "npdraw/workflow/systems.py"
    text = systems.read_text()
    entry = ('    System("toy", "Toy", "npdraw.models.toy:Toy", salt=99, section="toy",\n'
             '           schema={"latent": POSITIVE, **TRAINING}),\n')
    systems.write_text(text.replace("]}\n\nBASELINES", entry + "]}\n\nBASELINES"))
    with open(repo_copy / "params.yaml", "a") as f:
        f.write(textwrap.dedent("""
            toy:
              latent: 2
              lr: 1.0e-3
              batch_size: 50
              epochs: 1
            """))
    env = {**stage_env(), "PYTHONPATH": str(repo_copy)}
    regen = subprocess.run([sys.executable, "-m", "npdraw.workflow.generate", "--write"], cwd=repo_copy, env=env,
                           capture_output=True, text=True)
    assert regen.returncode == 0, regen.stderr
    assert 'variant="(pixelvae|vae|draw|toy)(-lr[0-9.]+)?"' in (repo_copy / "workflow/stages.smk").read_text()
    assert json.loads((repo_copy / "workflow/systems/toy.json").read_text())["model"] == "npdraw.models.toy:Toy"
    run = subprocess.run([venv_bin("snakemake"), "--cores", "2", "--config", "profile=smoke", "variant=toy", "-q"],
                         cwd=repo_copy, env=env, capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    metrics = json.loads((repo_copy / "results/mnist/smoke/full/seed0/toy/metrics/eval.json").read_text())
    assert metrics["system"] == "toy" and metrics["nll_nats"] <= -metrics["elbo_nats"] + 1e-6
    assert metrics["sample_rule"] == "z ~ N(0, I) -> Bernoulli pixels" and metrics["fid_domain"] > 0
    assert os.path.isfile(repo_copy / "results/mnist/smoke/full/seed0/toy/model/reconstructions.png")
