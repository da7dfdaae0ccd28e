"""The full NP-DRAW model (method §8-9): encoder q(z|x), decoder p(x|c_T), frozen prior p(z).

Objective (maximised): ELBO + lambda * L_reg, with
  ELBO  = E_q[log p(x|z)] - KL(q(z|x) || p(z)), the KL summed over steps:
          KL_is + q(z_is = 1) * (KL_id + KL_loc), each analytic given the
          history sampled from q (the prior's conditionals depend on it);
  L_reg = -CE of q at the heuristic parse (id and loc terms on parsed steps
          that draw, the z_is term on every step).
Gradients pass through the discrete latents by Gumbel-softmax; location and
presence are straight-through hard samples, the part identity is a relaxed
mixture or straight-through (`relaxed_id`).  Shapes: B images, T steps,
M parts, T_c cells, W channels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from npdraw.compute.precision import autocast, compiled_method, fp32
from npdraw.models.interface import contract, run_name, stacked_passes
from npdraw.models.layers import ConvTranspose2d, conv3x3
from npdraw.models.pixelcnn import PixelCNNBernoulli
from npdraw.models.prior import Prior, PriorConfig, draw_from_uniforms, prior_config
from npdraw.parts.canvas import Grid, render, render_relaxed


@dataclass(frozen=True)
class ModelConfig:
    channels: int          # image channels C
    image_size: int
    canvas_size: int
    parts: int             # M
    cells: int             # T = T_c
    arch: str              # small (supplement, MNIST/Omniglot) or large (paper text, colour)
    output: str            # bernoulli or logistic_mixture
    width: int = 128
    head_hidden: int = 128         # hidden units of each of q's three MLP heads
    n_mix: int = 10
    decoder: str = "factorised"   # factorised, or pixelcnn: a gated PixelCNN conditioned on the decoded canvas
    pixelcnn_layers: int = 1
    pixelcnn_width: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


# The params keys (section `model`) of the encoder and decoder's architecture; the rest comes from the
# dataset, NP-DRAW's method settings and the grid.
MODEL_ARCH_KEYS = ("width", "head_hidden", "n_mix", "decoder", "pixelcnn_layers", "pixelcnn_width")


def conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out), nn.ReLU())


def mlp_head(width: int, hidden: int, out: int) -> nn.Sequential:
    """Linear - ReLU - Linear: one of q's "three independent MLP heads" (paper 3.2, supplement)."""
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, out))


def to_step_grid(h: torch.Tensor, n: int) -> torch.Tensor:
    """Feature map (B, W, h, w) -> (B, W, n, n), one position per step of the n x n grid.

    A map smaller than the grid (the large encoder's 4 x 4 on 32 x 32 colour images, for an 8 x 8 grid)
    is upsampled bilinearly, as the authors' colour encoder does: neighbouring steps then mix the map
    cells in different proportions.  (Adaptive average pooling would copy each cell into a 2 x 2 block
    of steps, whose logits would then differ only by a constant.)  A larger map is average-pooled."""
    if h.shape[-1] < n or h.shape[-2] < n:
        return F.interpolate(h, size=(n, n), mode="bilinear", align_corners=False)
    return F.adaptive_avg_pool2d(h, n)


class Encoder(nn.Module):
    """CNN over x; its feature map, brought to the n x n step grid and mixed by a 1x1 conv + BN + ReLU
    (the authors' encoder), gives each step t its own features; plus a learned code of t, they feed
    the three MLP heads of step t."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        strides = (2, 2, 1, 1) if cfg.arch == "small" else (2, 2, 2, 1, 1)
        layers, c = [], cfg.channels
        for s in strides:
            layers.append(conv_bn(c, cfg.width, s))
            c = cfg.width
        self.body = nn.Sequential(*layers)
        self.n = int(round(math.sqrt(cfg.cells)))
        self.steps = nn.Sequential(nn.Conv2d(cfg.width, cfg.width, 1), nn.BatchNorm2d(cfg.width), nn.ReLU())
        self.step_code = nn.Parameter(torch.randn(cfg.cells, cfg.width) * 0.02)
        self.head_id = mlp_head(cfg.width, cfg.head_hidden, cfg.parts)
        self.head_loc = mlp_head(cfg.width, cfg.head_hidden, cfg.cells)
        self.head_is = mlp_head(cfg.width, cfg.head_hidden, 1)

    def forward(self, x: torch.Tensor):
        h = self.steps(to_step_grid(self.body(x), self.n))         # (B, W, n, n)
        h = h.flatten(2).transpose(1, 2) + self.step_code          # (B, T, W)
        # fp32 logits whatever the precision of the pass: the KL and parse CE are summed from them.
        return fp32(self.head_id(h)), fp32(self.head_loc(h)), fp32(self.head_is(h).squeeze(-1))


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))

    def forward(self, x):
        return F.relu(x + self.body(x))


class Decoder(nn.Module):
    """Canvas (B, C, S, S) -> output distribution parameters (B, P, H, W).

    Two stride-2 convs down, two stride-1 convs (small) or two residual blocks
    (large), transposed convs back up (one more when the image is larger than
    the canvas, as CelebA's 32 -> 64), then a 1x1 conv to the parameters.
    """

    def __init__(self, cfg: ModelConfig, out_params: int):
        super().__init__()
        w = cfg.width
        mid = [conv_bn(w, w, 1), conv_bn(w, w, 1)] if cfg.arch == "small" else [ResBlock(w), ResBlock(w)]
        ups = 2 + int(round(math.log2(cfg.image_size // cfg.canvas_size)))
        up = []
        for _ in range(ups):
            up += [ConvTranspose2d(w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU()]
        self.body = nn.Sequential(conv_bn(cfg.channels, w, 2), conv_bn(w, w, 2), *mid, *up)
        self.out = nn.Conv2d(w, out_params, 1)
        self.image_size = cfg.image_size

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        h = self.body(canvas)
        # Stride-2 convs round up (28 -> 14 -> 7 -> 14 -> 28); crop any excess for odd sizes.  fp32
        # parameters whatever the precision of the pass: log p(x|z) is summed from them.
        return fp32(self.out(h[..., :self.image_size, :self.image_size]))


# --- output distributions ---------------------------------------------------------------


class Bernoulli:
    """Binary pixels; parameters are logits (B, C, H, W)."""

    def __init__(self, channels: int):
        self.params = channels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per image (B,), nats; x in {0, 1}."""
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(1)

    def sample(self, params: torch.Tensor, generator=None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class LogisticMixture:
    """Discretized logistic mixture over 256 bins on [0, 1] (PixelCNN++, Salimans et al. 2017).

    Per pixel and component: a mixture logit, C means, C log-scales and, for
    C = 3, three coefficients that let green depend on red and blue on both.
    """

    def __init__(self, channels: int, n_mix: int):
        self.c, self.n = channels, n_mix
        self.coeffs = 3 if channels == 3 else 0
        self.params = n_mix * (1 + 2 * channels + self.coeffs)

    def _split(self, params: torch.Tensor):
        b, _, h, w = params.shape
        n, c = self.n, self.c
        logits = params[:, :n]                                              # (B, n, H, W)
        rest = params[:, n:].reshape(b, 2 * c + self.coeffs, n, h, w)
        means, log_scales = rest[:, :c], rest[:, c:2 * c].clamp(min=-7.0)   # (B, C, n, H, W)
        coeffs = torch.tanh(rest[:, 2 * c:]) if self.coeffs else None
        return logits, means, log_scales, coeffs

    def _channel_means(self, means, coeffs, x):
        """Means of each channel given the earlier channels' values x (B, C, 1, H, W) in [-1, 1]."""
        if coeffs is None:
            return means
        m0 = means[:, 0]
        m1 = means[:, 1] + coeffs[:, 0] * x[:, 0]
        m2 = means[:, 2] + coeffs[:, 1] * x[:, 0] + coeffs[:, 2] * x[:, 1]
        return torch.stack([m0, m1, m2], dim=1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x) per image (B,), nats; x (B, C, H, W) on the 256-level grid of [0, 1]."""
        logits, means, log_scales, coeffs = self._split(params)
        xs = (2.0 * x - 1.0).unsqueeze(2)                                   # (B, C, 1, H, W) in [-1, 1]
        centred = xs - self._channel_means(means, coeffs, xs)
        inv_s = torch.exp(-log_scales)
        plus, minus = inv_s * (centred + 1.0 / 255), inv_s * (centred - 1.0 / 255)
        cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        log_cdf_plus = plus - F.softplus(plus)                              # x = 0: the whole lower tail
        log_one_minus_cdf_min = -F.softplus(minus)                          # x = 1: the whole upper tail
        mid = inv_s * centred
        log_pdf_mid = mid - log_scales - 2.0 * F.softplus(mid) - math.log(127.5)  # fallback for tiny bins
        inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
        lp = torch.where(xs < -0.999, log_cdf_plus, torch.where(xs > 0.999, log_one_minus_cdf_min, inner))
        lp = lp.sum(1) + F.log_softmax(logits, dim=1)                       # (B, n, H, W)
        return torch.logsumexp(lp, dim=1).flatten(1).sum(1)

    def sample(self, params: torch.Tensor, generator=None) -> torch.Tensor:
        logits, means, log_scales, coeffs = self._split(params)
        g = -torch.log(-torch.log(torch.rand(logits.shape, generator=generator).clamp(1e-7, 1 - 1e-7)))
        pick = F.one_hot((logits + g.to(logits)).argmax(1), self.n).permute(0, 3, 1, 2).unsqueeze(1)  # (B,1,n,H,W)
        m = (means * pick).sum(2)
        s = (log_scales * pick).sum(2)
        u = torch.rand(m.shape, generator=generator).clamp(1e-5, 1 - 1e-5).to(m)
        x = m + torch.exp(s) * (torch.log(u) - torch.log1p(-u))            # (B, C, H, W) before coupling
        if coeffs is not None:
            c = (coeffs * pick).sum(2)
            x0 = x[:, 0].clamp(-1, 1)
            x1 = (x[:, 1] + c[:, 0] * x0).clamp(-1, 1)
            x2 = (x[:, 2] + c[:, 1] * x0 + c[:, 2] * x1).clamp(-1, 1)
            x = torch.stack([x0, x1, x2], 1)
        return torch.round((x.clamp(-1, 1) + 1) / 2 * 255) / 255

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The mean of the most probable component (for pictures)."""
        logits, means, _, _ = self._split(params)
        pick = F.one_hot(logits.argmax(1), self.n).permute(0, 3, 1, 2).unsqueeze(1)
        return ((means * pick).sum(2).clamp(-1, 1) + 1) / 2


def output_distribution(cfg: ModelConfig):
    if cfg.decoder == "pixelcnn":   # an nn.Module: its parameters train with the decoder's
        return PixelCNNBernoulli(cfg.pixelcnn_width, cfg.pixelcnn_width, cfg.pixelcnn_layers)
    return Bernoulli(cfg.channels) if cfg.output == "bernoulli" else LogisticMixture(cfg.channels, cfg.n_mix)


# --- latent distributions -----------------------------------------------------------------


def kl_categorical(q_logits: torch.Tensor, p_logits: torch.Tensor) -> torch.Tensor:
    """KL(q || p) over the last axis."""
    log_q = q_logits.log_softmax(-1)
    return (log_q.exp() * (log_q - p_logits.log_softmax(-1))).sum(-1)


def kl_bernoulli(q_logit: torch.Tensor, p_logit: torch.Tensor) -> torch.Tensor:
    q = torch.sigmoid(q_logit)
    return (q * (F.logsigmoid(q_logit) - F.logsigmoid(p_logit))
            + (1 - q) * (F.logsigmoid(-q_logit) - F.logsigmoid(-p_logit)))


def step_kl(q_logits, p_logits) -> torch.Tensor:
    """Per-step KL (B, T): KL_is + q(z_is = 1) (KL_id + KL_loc), given the sampled history."""
    (q_id, q_loc, q_is), (p_id, p_loc, p_is) = q_logits, p_logits
    return kl_bernoulli(q_is, p_is) + torch.sigmoid(q_is) * (kl_categorical(q_id, p_id) + kl_categorical(q_loc, p_loc))


def parse_cross_entropy(q_logits, z_id, z_loc, z_is) -> torch.Tensor:
    """-log q(parse) per image (B,): id and loc on parsed steps that draw, is on every step."""
    q_id, q_loc, q_is = q_logits
    drawn = z_is.to(q_id.dtype)
    ce_id = F.cross_entropy(q_id.transpose(1, 2), z_id, reduction="none")
    ce_loc = F.cross_entropy(q_loc.transpose(1, 2), z_loc, reduction="none")
    ce_is = F.binary_cross_entropy_with_logits(q_is, drawn, reduction="none")
    return (ce_is + drawn * (ce_id + ce_loc)).sum(1)


def hard_sample(q_logits, generator=None):
    """Discrete z ~ q: indices z_id, z_loc (B, T) and z_is (B, T) bool (uniforms from `generator` on the CPU)."""
    q_id, q_loc, q_is = q_logits
    u = torch.rand(*q_is.shape, 3, generator=generator).to(q_is.device, q_is.dtype)
    return draw_from_uniforms(q_id, q_loc, q_is, u)


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool) -> torch.Tensor:
    """F.gumbel_softmax over the last axis, with the Gumbel noise drawn as -log(-log U), U ~ U(0, 1):
    the same law as PyTorch's -log E, E ~ Exp(1), whose CPU exponential_ is several times slower than
    torch.rand and two logarithms (benchmarks/bench_layers.py; docs/performance.md)."""
    u = torch.rand_like(logits).clamp_min_(torch.finfo(logits.dtype).tiny)
    y = ((logits + u.log_().neg_().log_().neg_()) / tau).softmax(-1)
    if not hard:
        return y
    one_hot = torch.zeros_like(y).scatter_(-1, y.argmax(-1, keepdim=True), 1.0)
    return one_hot - y.detach() + y    # straight through: the one-hot forward, the soft gradient


def relaxed_sample(q_logits, tau: float, hard_id: bool):
    """Gumbel-softmax sample: z_id (B, T, M), z_loc (B, T, T_c) one-hot-like, z_is (B, T) in [0, 1].

    Location and presence are straight-through hard one-hots (a soft location
    would smear a part over several cells); the identity is relaxed unless hard_id.
    """
    q_id, q_loc, q_is = q_logits
    z_id = gumbel_softmax(q_id, tau, hard_id)
    z_loc = gumbel_softmax(q_loc, tau, True)
    two = torch.stack([q_is, torch.zeros_like(q_is)], -1)                 # logits of (draw, skip)
    z_is = gumbel_softmax(two, tau, True)[..., 0]
    return z_id, z_loc, z_is


def objective(terms: dict[str, torch.Tensor], kl_weight: float, lambda_reg: float) -> torch.Tensor:
    """The loss of each image (B,), nats: -(log p(x|z) - kl_weight * KL) + lambda * CE(q, parse)."""
    return -(terms["log_px"] - kl_weight * terms["kl"]) + lambda_reg * terms["ce"]


def warmup_probability(epoch: int, rate: float) -> float:
    """The authors' parse warm-up schedule: g_e = exp(-r e (e + 1) / 2) at epoch e (from 0)."""
    return math.exp(-rate * epoch * (epoch + 1) / 2)


def temperature(step: int, total: int, start: float, end: float) -> float:
    """Geometric annealing from start (step 0) to end (last step)."""
    return start * (end / start) ** (step / max(1, total - 1))


def one_hots(z_id, z_loc, z_is, parts: int, cells: int, dtype=torch.float32):
    return F.one_hot(z_id, parts).to(dtype), F.one_hot(z_loc, cells).to(dtype), z_is.to(dtype)


class NPDraw(nn.Module):
    """Encoder + decoder around a frozen prior (which always stays in eval mode); a GenerativeModel
    (npdraw.models.interface) whose checkpoint also holds its grid and its prior's architecture."""

    kind = "npdraw"
    keys = ("arch", "prior_arch", "grid", "state_dict")

    @classmethod
    def arch(cls, cfg) -> dict:
        grid = Grid.for_dataset(cfg.ds)
        return ModelConfig(channels=cfg.ds.channels, image_size=cfg.ds.image_size, canvas_size=cfg.ds.canvas_size,
                           parts=cfg.ds.bank_size, cells=grid.cells, arch=cfg.ds.arch, output=cfg.ds.output,
                           **{k: cfg.model[k] for k in MODEL_ARCH_KEYS}).to_dict()

    @classmethod
    def build(cls, cfg, prior: Prior) -> NPDraw:
        """A fresh encoder and decoder of the run's configuration around its trained `prior`."""
        return cls(ModelConfig(**cls.arch(cfg)), prior, Grid.for_dataset(cfg.ds))

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> NPDraw:
        grid, sd = Grid(**ckpt["grid"]), ckpt["state_dict"]
        prior = Prior(PriorConfig(**ckpt["prior_arch"]), sd["prior.bank"], grid)
        model = cls(ModelConfig(**ckpt["arch"]), prior, grid)
        model.load_state_dict(sd)
        return model

    @classmethod
    def check_checkpoint(cls, path, ckpt: dict, cfg=None) -> None:
        """Its kind and keys; with a run's `cfg`, the architecture that configuration gives, the prior's too."""
        c = contract(cls)
        if cfg is None:
            c.check(path, ckpt)
            return
        what = f"this run ({run_name(cfg)})"
        c.check(path, ckpt, cls.arch(cfg), what=what)
        c.check(path, ckpt, prior_config(cfg, Grid.for_dataset(cfg.ds)).to_dict(), found_config=ckpt["prior_arch"],
                what=f"{what}, for its prior")

    def checkpoint(self) -> dict:
        return {"arch": self.cfg.to_dict(), "prior_arch": self.prior.cfg.to_dict(),
                "grid": asdict(self.grid), "state_dict": self.state_dict()}

    # --- training (npdraw.training.trainer; the hooks of npdraw.models.interface) -------------------

    def param_groups(self, cfg) -> list[dict]:
        """The encoder at `model.lr`, the decoder at `model.lr * model.decoder_lr_scale` (the authors' code)."""
        mc = cfg.model
        return [{"params": self.encoder.parameters(), "lr": mc.lr},
                {"params": list(self.decoder_parameters()), "lr": mc.lr * mc.decoder_lr_scale}]

    def training_args(self, step, data: dict) -> tuple:
        """What `terms` takes besides the images at a training step: the parses of the step's images, the
        Gumbel temperature (annealed over all steps), the hard-identity switch and the parse warm-up's
        choice of images (each image of the global batch flips its own coin, from (seed, epoch, step): the
        same coins whatever the number of ranks)."""
        mc, cfg = step.cfg.model, step.cfg
        tau = temperature(step.epoch * step.per_epoch + step.index, step.total, mc.tau_start, mc.tau_end)
        warm = warmup_probability(step.epoch, cfg.ds.warmup_rate) if mc.warmup else 0.0
        replace = None
        if warm > 0:
            coins = np.random.default_rng([cfg.seed, step.epoch, step.index]).random(step.global_batch) < warm
            replace = torch.from_numpy(coins[step.rank::step.world]).to(step.rows.device)
        return data["parse"].batch(step.rows), tau, mc.relaxed_id == "hard", replace

    @staticmethod
    def objective(terms: dict[str, torch.Tensor], cfg) -> torch.Tensor:
        """The loss of each image (B,): objective() at the run's KL weight and lambda."""
        return objective(terms, cfg.model.kl_weight, cfg.ds.lambda_reg)

    def validation_terms(self, x: torch.Tensor, generator, data: dict, rows: slice, precision: str) -> dict:
        """log p(x|z), KL and the parse CE of one hard sample z ~ q of each image (B,), fp32."""
        with autocast(x.device, precision):
            q = self.encoder(x)
            z = hard_sample(q, generator)
            params, p = self.decoder(self.canvas(*z)), self.prior.logits(*z)
        return {"log_px": self.output.log_prob(params, x), "kl": step_kl(q, p).sum(1),
                "ce": parse_cross_entropy(q, *data["parse"].batch(rows))}

    def fingerprint(self) -> dict:
        """What a resume file must share with this run besides the configuration: the prior's architecture."""
        return {"prior": self.prior.cfg.to_dict()}

    def epoch_record(self, step) -> dict:
        """What an epoch's record says of the schedule: the Gumbel temperature of its last step."""
        mc = step.cfg.model
        return {"tau": temperature((step.epoch + 1) * step.per_epoch - 1, step.total, mc.tau_start, mc.tau_end)}

    def __init__(self, cfg: ModelConfig, prior: Prior, grid: Grid):
        super().__init__()
        self.cfg, self.grid = cfg, grid
        self.prior = prior
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.encoder = Encoder(cfg)
        self.output = output_distribution(cfg)
        self.decoder = Decoder(cfg, self.output.params)
        self.prior.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.prior.eval()  # no dropout while the prior scores the posterior's samples (method §7)
        return self

    @property
    def bank(self) -> torch.Tensor:
        return self.prior.bank

    def canvas(self, z_id, z_loc, z_is) -> torch.Tensor:
        """Final canvas (B, C, S, S) in the bank's dtype whatever the precision of the pass: from hard
        latents (indices) by a scatter-max, from relaxed ones (B, T, M), (B, T, T_c), (B, T) by
        render_relaxed, equal for one-hots.  Rendering is maxima of parts, no matmul for bf16 to speed up,
        while a CPU's element-wise kernels and amax's backward over the (B, T, T_c, D) contributions
        are slower in bf16, which autocast gave the part mixture (benchmarks/bench_layers.py).  The
        decoder's first convolution rounds the canvas to the pass's precision."""
        with torch.autocast(self.bank.device.type, enabled=False):
            if z_id.dtype == torch.long:
                return render(self.bank, z_id, z_loc, z_is, self.grid)
            return render_relaxed(self.bank, z_id, z_loc, z_is, self.grid)

    def terms(self, x_in, x_target, parse, tau: float, hard_id: bool, replace: torch.Tensor | None = None):
        """Per-image terms (B,): log p(x|z), KL, parse CE; and the sample's canvas (B, C, S, S).

        `replace` (B,) bool: the authors' parse warm-up; those images take the parse's z_id and z_loc
        in place of q's sample (their z_is stays sampled)."""
        q = self.encoder(x_in)
        z = relaxed_sample(q, tau, hard_id)
        if replace is not None:
            parse_id, parse_loc, _ = one_hots(*parse, self.cfg.parts, self.cfg.cells, z[0].dtype)
            swap = replace[:, None, None]
            z = (torch.where(swap, parse_id, z[0]), torch.where(swap, parse_loc, z[1]), z[2])
        canvas = self.canvas(*z)
        log_px = self.output.log_prob(self.decoder(canvas), x_target)
        p = self.prior.logits(*z)            # the prior's conditionals given the sampled history
        kl = step_kl(q, p).sum(1)
        ce = parse_cross_entropy(q, *parse)
        return {"log_px": log_px, "kl": kl, "ce": ce, "canvas": canvas}

    def score(self, q, z, x_target) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(x|z), log p(z), log q(z|x) (B,) of one hard sample z of the posterior q."""
        return (self.output.log_prob(self.decoder(self.canvas(*z)), x_target), self.prior.log_prob(*z)["total"],
                -parse_cross_entropy(q, *z))

    @torch.no_grad()
    def log_weights(self, x_in, x_target, samples: int, generator=None, compile: bool = False,
                    per_pass: int = 1) -> dict[str, torch.Tensor]:
        """Hard z_s ~ q(z|x), s = 1..S: log p(x|z_s), log p(z_s), log q(z_s|x), each (S, B).

        The encoder runs once; the decoder and the prior score `per_pass` samples of the whole batch as
        one batch of per_pass x B (`score`, through torch.compile with `compile`).  The samples are the
        same whatever per_pass (the uniforms are drawn sample after sample).  One sample per pass is the
        fastest on a 2-core CPU (the prior's T prefix canvases of a larger batch leave the caches); a GPU
        wants more (evaluate.samples_per_pass; docs/performance.md)."""
        q = self.encoder(x_in)
        return stacked_passes(q, x_target, samples, per_pass, lambda qk: hard_sample(qk, generator),
                              compiled_method(self, "score", compile))

    def decoder_parameters(self):
        """Parameters trained at the decoder's learning rate (with a PixelCNN output, its too)."""
        yield from self.decoder.parameters()
        if isinstance(self.output, nn.Module):
            yield from self.output.parameters()

    @torch.no_grad()
    def sample(self, n: int, generator=None, colour: str = "mean") -> dict[str, torch.Tensor | None]:
        """n images: latents from the prior (cached sampler), canvas, then the decoder's output: for
        binary data a Bernoulli draw (ancestral with a PixelCNN decoder); for colour data, `colour`
        'mean' gives per pixel the mean of the most probable mixture component on the 256 levels (the
        authors' sampler, no logistic noise) and 'sample' a draw from the mixture.  Also the decoder's
        means (None with a PixelCNN decoder, whose pixels depend on the pixels drawn before).  On the CPU."""
        *_, canvas = self.prior.sample(n, generator)
        params = self.decoder(canvas)
        if isinstance(self.output, nn.Module):
            return {"canvases": canvas.cpu(), "images": self.output.sample(params, generator).cpu(), "means": None}
        params = params.cpu()
        means = self.output.mean(params)
        if isinstance(self.output, LogisticMixture) and colour == "mean":
            images = torch.round(means * 255) / 255
        else:
            images = self.output.sample(params, generator)
        return {"canvases": canvas.cpu(), "images": images, "means": means}

    def sample_rule(self, colour: str) -> str:
        colour_mean = isinstance(self.output, LogisticMixture) and colour == "mean"
        return "prior sample -> canvas -> " + ("per pixel, the mean of the most probable mixture component"
                                               if colour_mean else "one draw from the decoder's distribution")

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The decoder's mean of the canvas of one hard sample z ~ q(z|x)."""
        return self.output.mean(self.decoder(self.canvas(*hard_sample(self.encoder(x), generator))))
