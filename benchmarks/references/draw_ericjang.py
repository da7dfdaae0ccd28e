"""A PyTorch port, written for this project, of a widely used DRAW implementation (ericjang/draw,
TensorFlow, draw.py), to check the pipeline's DRAW against (benchmarks/baseline_references.py).

What is kept of the reference: its recurrence (error image, attention read of image and error, encoder
LSTM on [read, h_dec], q's mu and log sigma from two linear maps, decoder LSTM, attention write scaled by
1 / gamma), its initialisation (TensorFlow's defaults: Glorot-uniform weights, zero biases, LSTM cells
with a forget-gate bias of 1), its objective (summed BCE of sigma(c_T) plus the analytic KL of each step,
averaged over the batch) and its optimiser (Adam, learning rate 1e-3, beta1 0.5, each variable's gradient
clipped to norm 5).  One difference: its filterbank squares (a - mu) / (2 sigma^2) where the DRAW paper
(and jbornschein/draw) has (a - mu)^2 / (2 sigma^2); the paper's is used here, as in the pipeline.
Sizes are parameters (the pipeline's findings profile: T 32, 256 units, 100 latent dimensions, read 2,
write 5).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class TFLSTMCell(nn.Module):
    """tf.nn.rnn_cell.LSTMCell: one Glorot-uniform kernel over [input, h], zero bias, gates i, j, f, o with
    1 added to the forget gate's pre-activation."""

    def __init__(self, c_in: int, hidden: int):
        super().__init__()
        self.kernel = nn.Linear(c_in + hidden, 4 * hidden)
        nn.init.xavier_uniform_(self.kernel.weight)
        nn.init.zeros_(self.kernel.bias)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        c, h = state
        i, j, f, o = self.kernel(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(j)
        return torch.tanh(c) * torch.sigmoid(o), (c, torch.tanh(c) * torch.sigmoid(o))


def glorot_linear(c_in: int, c_out: int) -> nn.Linear:
    layer = nn.Linear(c_in, c_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ReferenceDRAW(nn.Module):
    def __init__(self, size: int = 28, steps: int = 32, hidden: int = 256, latent: int = 100, read_n: int = 2,
                 write_n: int = 5):
        super().__init__()
        self.size, self.steps, self.hidden, self.latent = size, steps, hidden, latent
        self.read_n, self.write_n = read_n, write_n
        self.enc = TFLSTMCell(2 * read_n * read_n + hidden, hidden)
        self.dec = TFLSTMCell(latent, hidden)
        self.mu, self.log_sigma = glorot_linear(hidden, latent), glorot_linear(hidden, latent)
        self.read_window, self.write_window = glorot_linear(hidden, 5), glorot_linear(hidden, 5)
        self.write_w = glorot_linear(hidden, write_n * write_n)

    def window(self, layer: nn.Linear, h: torch.Tensor, n: int):
        """attn_window: F_x, F_y (B, N, A) and gamma (B, 1) from the decoder state."""
        gx_, gy_, log_sigma2, log_delta, log_gamma = layer(h).chunk(5, 1)
        a = self.size
        gx, gy = (a + 1) / 2 * (gx_ + 1), (a + 1) / 2 * (gy_ + 1)
        sigma2, delta = torch.exp(log_sigma2), (a - 1) / (n - 1) * torch.exp(log_delta)
        grid = torch.arange(n, dtype=h.dtype, device=h.device).view(1, -1) - n / 2 - 0.5
        pixels = torch.arange(a, dtype=h.dtype, device=h.device).view(1, 1, -1)

        def bank(g):
            mu = (g + grid * delta).unsqueeze(-1)                                   # (B, N, 1)
            f = torch.exp(-(pixels - mu) ** 2 / (2 * sigma2.unsqueeze(-1)))
            return f / f.sum(2, keepdim=True).clamp_min(1e-8)
        return bank(gx), bank(gy), torch.exp(log_gamma)

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, a = x.shape[0], self.size
        x = x.reshape(b, a * a)
        zeros = x.new_zeros(b, self.hidden)
        enc_state, dec_state, h_dec = (zeros, zeros), (zeros, zeros), zeros
        canvas = x.new_zeros(b, a * a)
        kl = x.new_zeros(b)
        for _ in range(self.steps):
            x_hat = x - torch.sigmoid(canvas)
            fx, fy, gamma = self.window(self.read_window, h_dec, self.read_n)
            glimpses = [(fy @ img.view(b, a, a) @ fx.transpose(1, 2)).flatten(1) * gamma for img in (x, x_hat)]
            h_enc, enc_state = self.enc(torch.cat([*glimpses, h_dec], 1), enc_state)
            mu, log_sigma = self.mu(h_enc), self.log_sigma(h_enc)
            z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
            kl = kl + 0.5 * (mu ** 2 + torch.exp(2 * log_sigma) - 2 * log_sigma - 1).sum(1)
            h_dec, dec_state = self.dec(z, dec_state)
            fx, fy, gamma = self.window(self.write_window, h_dec, self.write_n)
            w = self.write_w(h_dec).view(b, self.write_n, self.write_n)
            canvas = canvas + (fy.transpose(1, 2) @ w @ fx).flatten(1) / gamma
        return {"canvas": canvas, "kl": kl}

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.run(x)
        log_px = -F.binary_cross_entropy_with_logits(out["canvas"], x.reshape(len(x), -1), reduction="none").sum(1)
        return {"log_px": log_px, "kl": out["kl"]}

    def loss(self, x: torch.Tensor, step: int) -> torch.Tensor:
        t = self.terms(x)
        return (-t["log_px"] + t["kl"]).mean()

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def clip(self) -> None:
        """Each variable's gradient clipped to norm 5 (tf.clip_by_norm per gradient)."""
        for p in self.parameters():
            if p.grad is not None:
                norm = p.grad.norm()
                if norm > 5:
                    p.grad.mul_(5 / norm)
