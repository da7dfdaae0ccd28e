"""DRAW (Gregor, Danihelka, Graves, Rezende, Wierstra; ICML 2015), a baseline (method §13, variant `draw`).

A recurrent VAE that writes to a canvas over T steps.  With c_0 = 0 (logits), zero LSTM states and
sigma the logistic function, for t = 1..T:

    xhat_t  = x - sigma(c_{t-1})                          the error image
    r_t     = read(x, xhat_t, h_dec_{t-1})
    h_enc_t = LSTM_enc(h_enc_{t-1}, [r_t, h_dec_{t-1}])
    z_t     ~ q(z_t | h_enc_t) = N(mu_t, diag s_t^2)      mu_t, log s_t linear in h_enc_t
    h_dec_t = LSTM_dec(h_dec_{t-1}, z_t)
    c_t     = c_{t-1} + write(h_dec_t)

and p(x | z) = Bernoulli(sigma(c_T)) per pixel, p(z) = prod_t N(z_t; 0, I).  Because mu_t and s_t
depend on the sampled history (through h_dec), log q(z|x) = sum_t log N(z_t; mu_t, s_t^2) along one
sampled trajectory: the importance-sampled bound uses it exactly as for any other latent variable model.

Selective attention: an N x N grid of Gaussian filters over the W x H image (the paper's A x B), placed
by five numbers a linear layer reads off h_dec (centre gx~, gy~; log variance; log stride delta~; log
intensity gamma): centre g_X = (W + 1)/2 (gx~ + 1), stride delta = (max(W, H) - 1)/(N - 1) delta~,
filter i's mean g_X + (i - N/2 - 0.5) delta (i = 1..N, pixels a = 1..W), each filter row normalised to
sum 1 (`filterbank`).  read = gamma [F_Y x F_X^T, F_Y xhat F_X^T], two N x N glimpses; write =
(1/gamma') F'_Y^T w F'_X of an N' x N' patch w linear in h_dec, placed by a second linear layer.  Without
attention, read = [x, xhat] and write is a linear map to the whole image.  Shapes: B images, H x W
pixels, N read and N' write grid sides, L latent dimensions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from npdraw.compute.precision import fp32
from npdraw.models.interface import Baseline
from npdraw.models.vae import gaussian_log_prob, standard_normal_log_prob


@dataclass(frozen=True)
class DRAWConfig:
    image_size: int = 28       # H = W
    steps: int = 64            # T
    hidden: int = 256          # units of each LSTM
    latent: int = 100          # L, per step
    attention: bool = True
    read: int = 2              # N of the read grid
    write: int = 5             # N' of the write patch

    def to_dict(self) -> dict:
        return asdict(self)


def filterbank(params: torch.Tensor, n: int, height: int, width: int, eps: float = 1e-8):
    """The Gaussian filters of an N x N grid from the attention parameters (B, 5) = (gx~, gy~, log var,
    log delta~, log gamma): F_X (B, N, W), F_Y (B, N, H), each row summing to 1, and gamma (B,)."""
    gx_, gy_, log_var, log_delta, log_gamma = params.float().unbind(-1)
    g_x, g_y = (width + 1) / 2 * (gx_ + 1), (height + 1) / 2 * (gy_ + 1)
    delta = (max(width, height) - 1) / max(n - 1, 1) * torch.exp(log_delta)
    offsets = torch.arange(1, n + 1, device=params.device, dtype=torch.float32) - n / 2 - 0.5   # (N,)
    mu_x = g_x[:, None] + offsets * delta[:, None]                                               # (B, N)
    mu_y = g_y[:, None] + offsets * delta[:, None]
    var = torch.exp(log_var)[:, None, None]

    def bank(mu: torch.Tensor, size: int) -> torch.Tensor:
        pixels = torch.arange(1, size + 1, device=params.device, dtype=torch.float32)            # (size,)
        f = torch.exp(-(pixels - mu[..., None]) ** 2 / (2 * var))                                 # (B, N, size)
        return f / (f.sum(-1, keepdim=True) + eps)

    return bank(mu_x, width), bank(mu_y, height), torch.exp(log_gamma)


def read_glimpse(images: torch.Tensor, f_x: torch.Tensor, f_y: torch.Tensor) -> torch.Tensor:
    """F_Y image F_X^T: images (B, H, W) -> (B, N, N)."""
    return f_y @ images @ f_x.transpose(1, 2)


def write_patch(patch: torch.Tensor, f_x: torch.Tensor, f_y: torch.Tensor) -> torch.Tensor:
    """F_Y^T patch F_X: a patch (B, N, N) -> an image (B, H, W)."""
    return f_y.transpose(1, 2) @ patch @ f_x


class DRAW(Baseline, nn.Module):
    """See the module docstring."""

    kind = "draw"
    Config = DRAWConfig

    @classmethod
    def data_arch(cls, cfg) -> dict:
        return {"image_size": cfg.ds.image_size}

    def __init__(self, cfg: DRAWConfig):
        super().__init__()
        self.cfg = cfg
        side = cfg.image_size
        pixels = side * side
        read_size = 2 * cfg.read ** 2 if cfg.attention else 2 * pixels
        self.enc = nn.LSTMCell(read_size + cfg.hidden, cfg.hidden)
        self.to_q = nn.Linear(cfg.hidden, 2 * cfg.latent)
        self.dec = nn.LSTMCell(cfg.latent, cfg.hidden)
        if cfg.attention:
            self.read_params = nn.Linear(cfg.hidden, 5)
            self.write_params = nn.Linear(cfg.hidden, 5)
            self.to_patch = nn.Linear(cfg.hidden, cfg.write ** 2)
        else:
            self.to_patch = nn.Linear(cfg.hidden, pixels)

    # --- the two operations on the image ---------------------------------------------------------

    def read(self, x: torch.Tensor, xhat: torch.Tensor, h_dec: torch.Tensor) -> torch.Tensor:
        """(B, 2 N^2) glimpses of the image and the error image (or both whole, without attention)."""
        if not self.cfg.attention:
            return torch.cat([x, xhat], 1)
        side, n = self.cfg.image_size, self.cfg.read
        f_x, f_y, gamma = filterbank(self.read_params(h_dec), n, side, side)
        glimpses = [read_glimpse(img.view(-1, side, side), f_x, f_y).flatten(1) for img in (x, xhat)]
        return gamma[:, None] * torch.cat(glimpses, 1)

    def write(self, h_dec: torch.Tensor) -> torch.Tensor:
        """What step t adds to the canvas logits, (B, H * W)."""
        if not self.cfg.attention:
            return fp32(self.to_patch(h_dec))
        side, n = self.cfg.image_size, self.cfg.write
        f_x, f_y, gamma = filterbank(self.write_params(h_dec), n, side, side)
        patch = fp32(self.to_patch(h_dec)).view(-1, n, n)
        return (write_patch(patch, f_x, f_y) / gamma[:, None, None]).flatten(1)

    # --- the recurrence --------------------------------------------------------------------------

    def run(self, x: torch.Tensor, noise) -> dict[str, torch.Tensor]:
        """The T steps on images x (B, 1, H, W) in [0, 1]: `noise(t, shape)` gives step t's standard normal
        draw (None: z_t = mu_t).  Returns the canvas logits c_T (B, H * W), and log q(z|x), log p(z) and
        the analytic KL (each (B,), summed over steps)."""
        b = x.shape[0]
        flat = x.reshape(b, -1).float()
        h = self.cfg.hidden
        state_enc = (flat.new_zeros(b, h), flat.new_zeros(b, h))
        state_dec = (flat.new_zeros(b, h), flat.new_zeros(b, h))
        canvas = flat.new_zeros(flat.shape)
        log_q = log_p = kl = flat.new_zeros(b)
        for t in range(self.cfg.steps):
            xhat = flat - torch.sigmoid(canvas)
            r = self.read(flat, xhat, state_dec[0])
            state_enc = self.enc(torch.cat([r.to(state_dec[0].dtype), state_dec[0]], 1), state_enc)
            mu, log_var = fp32(self.to_q(state_enc[0])).chunk(2, dim=-1)            # fp32: q's density is summed
            log_var = log_var.clamp(-12.0, 8.0)
            eps = noise(t, mu.shape)
            z = mu if eps is None else mu + torch.exp(0.5 * log_var) * eps
            log_q = log_q + gaussian_log_prob(z, mu, log_var)
            log_p = log_p + standard_normal_log_prob(z)
            kl = kl + 0.5 * (mu ** 2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)
            state_dec = self.dec(z.to(state_dec[0].dtype), state_dec)
            canvas = canvas + self.write(state_dec[0])
        return {"canvas": canvas, "log_qz": log_q, "log_pz": log_p, "kl": kl}

    @staticmethod
    def log_px(canvas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log Bernoulli(x; sigma(c_T)) per image (B,)."""
        return -F.binary_cross_entropy_with_logits(canvas, x.reshape(x.shape[0], -1).float(),
                                                   reduction="none").sum(1)

    # --- the interface (npdraw.models.interface.GenerativeModel) --------------------------------

    def terms(self, x_in: torch.Tensor, x_target: torch.Tensor | None = None,
              generator=None) -> dict[str, torch.Tensor]:
        """Per-image log p(x|z) of one reparameterised trajectory and its KL, analytic per step (B,)."""
        x_target = x_in if x_target is None else x_target

        def noise(t, shape):
            return (torch.randn(shape, generator=generator).to(x_in.device) if generator is not None
                    else torch.randn(shape, device=x_in.device))
        out = self.run(x_in, noise)
        return {"log_px": self.log_px(out["canvas"], x_target), "kl": out["kl"]}

    @torch.no_grad()
    def log_weights(self, x_in, x_target, samples: int, generator=None, compile: bool = False,
                    per_pass: int = 1) -> dict[str, torch.Tensor]:
        """S trajectories z_s ~ q(z|x): log p(x|z_s), log p(z_s), log q(z_s|x), each (S, B); `per_pass` of
        them as one batch of per_pass x B (sample-major, the noise drawn pass after pass: the same numbers
        whatever per_pass).  `compile` does not apply (the loop over steps runs eagerly)."""
        b = x_in.shape[0]
        out: dict[str, list] = {"log_px": [], "log_pz": [], "log_qz": []}
        for first in range(0, samples, per_pass):
            k = min(per_pass, samples - first)
            xk, tk = x_in.repeat(k, 1, 1, 1), x_target.repeat(k, 1, 1, 1)
            draws = torch.cat([torch.randn(self.cfg.steps, b, self.cfg.latent, generator=generator)
                               for _ in range(k)], 1).to(x_in.device)                   # (T, k B, L)
            ran = self.run(xk, lambda t, shape, draws=draws: draws[t])
            for key, value in (("log_px", self.log_px(ran["canvas"], tk)), ("log_pz", ran["log_pz"]),
                               ("log_qz", ran["log_qz"])):
                out[key].append(value.reshape(k, b))
        return {key: torch.cat(v) for key, v in out.items()}

    @torch.no_grad()
    def generate_canvas(self, n: int, generator=None) -> torch.Tensor:
        """Canvas logits (n, H * W) of the decoder alone, z_t ~ N(0, I) at every step."""
        device = self.to_q.weight.device
        h = self.cfg.hidden
        state = (torch.zeros(n, h, device=device), torch.zeros(n, h, device=device))
        canvas = torch.zeros(n, self.cfg.image_size ** 2, device=device)
        for _ in range(self.cfg.steps):
            z = torch.randn(n, self.cfg.latent, generator=generator).to(device)
            state = self.dec(z.to(state[0].dtype), state)
            canvas = canvas + self.write(state[0])
        return canvas

    @torch.no_grad()
    def sample(self, n: int, generator=None, colour: str = "mean") -> dict[str, torch.Tensor | None]:
        """The decoder alone from the prior, then one Bernoulli draw per pixel of sigma(c_T); the means are
        sigma(c_T).  Binary data only: `colour` does not apply."""
        side = self.cfg.image_size
        means = torch.sigmoid(self.generate_canvas(n, generator)).view(n, 1, side, side).cpu()
        images = (torch.rand(means.shape, generator=generator) < means).to(means.dtype)
        return {"images": images, "canvases": None, "means": means}

    def sample_rule(self, colour: str) -> str:
        return "z_t ~ N(0, I) for each of the T steps -> decoder LSTM writes -> one Bernoulli draw per pixel"

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """sigma(c_T) of the trajectory that takes q's mean at every step."""
        side = self.cfg.image_size
        return torch.sigmoid(self.run(x, lambda t, shape: None)["canvas"]).view(-1, 1, side, side)

