"""The Transformer prior p(z) over latent drawing sequences (method §7).

Token t (t = 1..T) is a (C+1)-channel image: the canvas before step t and the
mask of the cell drawn at step t-1 (gated by z_is; all zero for t = 1).  A
shallow CNN embeds each token, a sinusoidal code of t is added, and a causal
pre-norm Transformer lets output t see tokens 1..t only (a learned code of t
instead of the sinusoidal one with `position: learned`, as the authors' ViT).  Three MLP heads
read output t and give the conditionals of step t:
  p(z_id^t | .) over M parts, p(z_loc^t | .) over T_c cells, p(z_is^t | .).
The id and loc terms count only where z_is^t = 1 (Eq. 5).

Shapes: B sequences, T steps, M parts, T_c cells, W model width.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from npdraw.artifacts.contracts import CheckpointContract
from npdraw.artifacts.io import read_checkpoint, save_torch
from npdraw.compute.precision import fp32
from npdraw.models.interface import run_name
from npdraw.models.layers import conv3x3
from npdraw.parts.canvas import Grid, cell_masks, prefix_cells, render, step_parts, token_images


@dataclass(frozen=True)
class PriorConfig:
    parts: int            # M
    steps: int            # T
    cells: int            # T_c, locations to choose from
    channels: int         # C
    side: int             # canvas side S
    width: int = 64
    layers: int = 8
    heads: int = 4
    head_dim: int | None = None   # attention width per head; None: width / heads (the authors' ViT: 64)
    position: str = "sinusoidal"  # code of the step index: sinusoidal, or learned (the authors' ViT)
    mlp_ratio: int = 4
    dropout: float = 0.1
    conv_channels: int = 16
    head_hidden: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


# The params keys of the prior's architecture (the rest of its configuration comes from the dataset and grid).
PRIOR_ARCH_KEYS = ("width", "layers", "heads", "head_dim", "position", "mlp_ratio", "dropout", "conv_channels",
                   "head_hidden")


def prior_config(cfg, grid: Grid) -> PriorConfig:
    """The prior's architecture that a run's resolved configuration gives."""
    return PriorConfig(parts=cfg.ds.bank_size, steps=grid.cells, cells=grid.cells, channels=grid.channels,
                       side=grid.side, **{k: cfg.prior[k] for k in PRIOR_ARCH_KEYS})


def sinusoidal(positions: int, width: int) -> torch.Tensor:
    """(positions, width) sinusoidal position codes (Vaswani et al.)."""
    pos = torch.arange(positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(positions, width)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


class TokenEncoder(nn.Module):
    """Shallow CNN: (N, C+1, S, S) -> (N, W). Two 3x3 stride-2 convs, ReLU after the first, a linear
    projection.  Frozen (model training), everything after the ReLU runs as one matmul (`composed`)."""

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        c = cfg.conv_channels
        self.conv1 = conv3x3(cfg.channels + 1, c, 2)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        reduced = math.ceil(math.ceil(cfg.side / 2) / 2)  # two stride-2 convs with padding 1
        self.proj = nn.Linear(c * reduced * reduced, cfg.width)

    @property
    def channels_last(self) -> bool:
        """Whether the convolutions' weights are in channels_last (npdraw.compute.precision.use_layout): the
        layout the tokens are then built in, so that the convolution does not convert them."""
        return self.conv1.weight.is_contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x))                                              # (N, c, S/2, S/2)
        frozen = not any(p.requires_grad for p in (*self.conv2.parameters(), *self.proj.parameters()))
        if h.requires_grad and frozen and not torch.compiler.is_compiling():
            # Model training (the prior frozen, its input carrying the encoder's gradient): conv2, the
            # flattening and proj are one linear map, applied as one matmul; its input gradient is a
            # matmul too, where oneDNN's for conv2 (16 channels) is slow (benchmarks/bench_layers.py).
            weight, bias = self.composed(h.shape[1:], h.device)
            return F.linear(h.permute(0, 2, 3, 1).flatten(1), weight, bias)  # h read in (i, j, c) order
        return self.proj(self.conv2(h).flatten(1))

    def composed(self, shape: torch.Size, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """proj(conv2(h).flatten(1)) = h' @ weight.T + bias, for h' = h (c, H, W) flattened in (i, j, c)
        order: weight (W, H * W * c), bias (W,), in the parameters' dtype.  Built by passing the basis
        images through conv2, and kept while the parameters stay the same (the prior is frozen while the
        model trains; loading or updating them changes their storage or version)."""
        params = (*self.conv2.parameters(), *self.proj.parameters())
        key = (tuple(shape), device, *((p.data_ptr(), p._version) for p in params))
        cached = self.__dict__.get("_composed")
        if cached is None or cached[0] != key:
            c, h, w = shape
            dtype = self.proj.weight.dtype
            with torch.no_grad(), torch.autocast(device.type, enabled=False):
                basis = torch.eye(h * w * c, device=device, dtype=dtype).reshape(-1, h, w, c).permute(0, 3, 1, 2)
                linear_part = F.conv2d(basis, self.conv2.weight, None, 2, 1).flatten(1)   # (H*W*c, c * H' * W')
                weight = (linear_part @ self.proj.weight.t()).t().contiguous()
                positions = linear_part.shape[1] // self.conv2.out_channels            # H' * W'
                bias = self.proj(self.conv2.bias.repeat_interleave(positions))
            cached = (key, weight, bias)
            self.__dict__["_composed"] = cached
        return cached[1], cached[2]


class Block(nn.Module):
    """Pre-norm Transformer block; attention by F.scaled_dot_product_attention.

    With a cache (a dict per block), the block takes only the new tokens and
    attends to every earlier token's keys and values kept in the cache.
    """

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.head_dim = cfg.head_dim or cfg.width // cfg.heads
        inner = self.heads * self.head_dim
        self.ln1, self.ln2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.qkv = nn.Linear(cfg.width, 3 * inner)
        self.out = nn.Linear(inner, cfg.width)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, cfg.mlp_ratio * cfg.width), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.width, cfg.width))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        b, t, _ = x.shape
        inner = self.heads * self.head_dim
        q, k, v = self.qkv(self.ln1(x)).split(inner, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, self.head_dim).transpose(1, 2) for z in (q, k, v))  # (B, H, t, d)
        if cache is not None:
            assert t == 1, "the cache takes one new token at a time"
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        # Without a cache the whole sequence is causal; with one, the single new token sees every cached one.
        a = attention(q, k, v, causal=cache is None, dropout=self.dropout if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, inner)))
        return x + self.drop(self.mlp(self.ln2(x)))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, dropout: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over (B, H, t, d).  bf16 on a CPU: written out, since PyTorch's CPU
    flash kernel (pytorch/pytorch#104863 added its bf16 path) is several times slower than three small
    matmuls at the prior's sizes (t = T, d = W / heads; docs/performance.md); fp32 and CUDA:
    F.scaled_dot_product_attention."""
    if not (q.is_cpu and q.dtype == torch.bfloat16):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout)
    # q is scaled rather than the scores, a larger tensor: the same values when d is a power of 4 (16 and
    # 64, the default and the authors' head widths: the factor is then a power of 2), else up to rounding.
    # The causal mask is added (-inf above the diagonal) by the batched matmul itself.
    *lead, t, d = q.shape
    t_k = k.shape[-2]
    q, k_t = (q * d ** -0.5).reshape(-1, t, d), k.reshape(-1, t_k, d).transpose(1, 2)
    if causal:
        mask = torch.zeros(1, t, t_k, dtype=q.dtype, device=q.device).masked_fill_(
            torch.ones(t, t_k, dtype=torch.bool, device=q.device).triu_(1), float("-inf"))
        scores = torch.baddbmm(mask, q, k_t)
    else:
        scores = torch.bmm(q, k_t)
    scores = scores.view(*lead, t, t_k)                                            # (B, H, t, t_k)
    weights = F.dropout(scores.softmax(-1), dropout, training=dropout > 0)
    return weights @ v


def draw_from_uniforms(id_logits, loc_logits, is_logits, u: torch.Tensor):
    """Inverse-CDF draws of (z_id, z_loc, z_is) from uniforms u (..., 3), any leading shape.

    The same u give the same sample whichever sampler asks, and u can be drawn on
    the CPU (a CPU generator cannot drive CUDA sampling) and moved to the logits' device.
    """
    def categorical(logits, v):
        # Category k where cdf[k-1] <= v < cdf[k] (right=True), with v scaled to the cdf's rounded total
        # so that v < cdf[-1]: a category of probability 0 is never drawn, not even for v = 0
        # (torch.rand can return 0) or when the rounded cdf ends below 1.
        cdf = logits.float().softmax(-1).cumsum(-1)
        v = (v.unsqueeze(-1) * cdf[..., -1:]).contiguous()
        return torch.searchsorted(cdf, v, right=True).squeeze(-1).clamp_max(logits.shape[-1] - 1)

    return categorical(id_logits, u[..., 1]), categorical(loc_logits, u[..., 2]), u[..., 0] < torch.sigmoid(is_logits)


def mlp_head(width: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, out))


class Prior(nn.Module):
    """p(z): holds the part bank (a buffer) so that it can render canvases itself."""

    def __init__(self, cfg: PriorConfig, bank: torch.Tensor, grid: Grid):
        super().__init__()
        self.cfg, self.grid = cfg, grid
        self.register_buffer("bank", bank.clone())
        self.encode = TokenEncoder(cfg)
        if cfg.position == "learned":
            self.position = nn.Parameter(torch.randn(cfg.steps, cfg.width) * 0.02)
        else:
            self.register_buffer("position", sinusoidal(cfg.steps, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.head_id = mlp_head(cfg.width, cfg.head_hidden, cfg.parts)
        self.head_loc = mlp_head(cfg.width, cfg.head_hidden, cfg.cells)
        self.head_is = mlp_head(cfg.width, cfg.head_hidden, 1)

    # --- teacher-forced pass ---------------------------------------------------------------

    def tokens(self, z_id, z_loc, z_is) -> torch.Tensor:
        """Input images of all T steps, built at once: (B * T, C+1, S, S), sequence-major, in the token
        CNN's memory layout (channels_last when its weights are, npdraw.compute.precision.use_layout)."""
        canvas = prefix_cells(self.bank, z_id, z_loc, z_is, self.grid)          # c_0 .. c_{T-1}: (B, T, T_c, D)
        drew = cell_masks(z_loc, z_is, self.grid)                                # cells of steps 1..T: (B, T, T_c)
        drew = torch.cat([torch.zeros_like(drew[:, :1]), drew[:, :-1]], 1)     # the cell of step t-1 at t
        return token_images(canvas.flatten(0, 1), drew.flatten(0, 1), self.grid, self.encode.channels_last)

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of the three conditionals, fp32 whatever the precision of the pass (npdraw.compute.precision)."""
        h = self.ln_f(h)
        return fp32(self.head_id(h)), fp32(self.head_loc(h)), fp32(self.head_is(h).squeeze(-1))

    def logits(self, z_id, z_loc, z_is):
        """Conditionals of every step given the true past: (B, T, M), (B, T, T_c), (B, T)."""
        b, t = z_id.shape[:2]
        h = self.encode(self.tokens(z_id, z_loc, z_is)).reshape(b, t, -1) + self.position[:t]
        for block in self.blocks:
            h = block(h)
        return self.heads(h)

    def log_prob(self, z_id, z_loc, z_is) -> dict[str, torch.Tensor]:
        """log p(z) per sequence, (B,), split into id / loc / is terms (nats).

        z_id, z_loc: (B, T) int64; z_is: (B, T) bool or {0, 1}.  One pass, no loop over steps.
        """
        id_logits, loc_logits, is_logits = self.logits(z_id, z_loc, z_is)
        drawn = z_is.to(id_logits.dtype)
        lp_id = -F.cross_entropy(id_logits.transpose(1, 2), z_id, reduction="none")      # (B, T)
        lp_loc = -F.cross_entropy(loc_logits.transpose(1, 2), z_loc, reduction="none")   # (B, T)
        lp_is = -F.binary_cross_entropy_with_logits(is_logits, drawn, reduction="none")  # (B, T)
        out = {"id": (lp_id * drawn).sum(1), "loc": (lp_loc * drawn).sum(1), "is": lp_is.sum(1)}
        out["total"] = out["id"] + out["loc"] + out["is"]
        return out

    # --- sampling --------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, cached: bool = True):
        """Draw n sequences autoregressively (temperature 1); return z_id, z_loc, z_is (n, T) and c_T.

        cached=True keeps each block's keys/values and the running canvas, so each
        step encodes one new token: linear in T.  cached=False re-encodes the whole
        prefix every step (the authors' approach, quadratic): a reference for tests.
        """
        device, t_max = self.bank.device, self.cfg.steps
        u = torch.rand(n, t_max, 3, generator=generator, device="cpu").to(device, self.bank.dtype)
        z_id = torch.zeros(n, t_max, dtype=torch.long, device=device)
        z_loc = torch.zeros_like(z_id)
        z_is = torch.zeros(n, t_max, dtype=torch.bool, device=device)
        grid = self.grid
        cells = self.bank.new_zeros(n, grid.cells, grid.dim)        # running canvas, per cell
        drew = self.bank.new_zeros(n, grid.cells)                    # cell drawn at the previous step
        caches = [{} for _ in self.blocks]
        for t in range(t_max):
            if cached:
                token = token_images(cells, drew, grid, self.encode.channels_last)       # (n, C+1, S, S)
                h = self.encode(token)[:, None] + self.position[t]
                for block, cache in zip(self.blocks, caches):
                    h = block(h, cache)
                logits = [x[:, -1] for x in self.heads(h)]
            else:
                past = self.logits(z_id[:, :t + 1], z_loc[:, :t + 1], z_is[:, :t + 1])   # re-encode the prefix
                logits = [x[:, t] for x in past]
            i, loc, draw = draw_from_uniforms(*logits, u[:, t])
            z_id[:, t], z_loc[:, t], z_is[:, t] = i, loc, draw
            if cached:
                part = step_parts(self.bank, i[:, None], draw[:, None])[:, 0]            # (n, D)
                cells = cells.scatter_reduce(1, loc[:, None, None].expand(-1, 1, grid.dim), part[:, None],
                                             reduce="amax", include_self=True)
                drew = cell_masks(loc[:, None], draw[:, None], grid)[:, 0].to(drew.dtype)
        return z_id, z_loc, z_is, render(self.bank, z_id, z_loc, z_is, grid)


# --- its checkpoint -----------------------------------------------------------------------------

# prior/best.pt: the architecture (PriorConfig), the grid, and the weights (the bank among them).
PRIOR_CHECKPOINT = CheckpointContract("prior", "train_prior", ("arch", "grid", "state_dict"))


def build_prior(arch: dict, bank: torch.Tensor, grid: Grid) -> Prior:
    return Prior(PriorConfig(**arch), bank, grid)


def save_prior(path: Path, model: Prior, extra: dict) -> None:
    """A prior's state dict, its architecture and grid, and `extra` (epoch, validation score)."""
    save_torch(path, {"arch": model.cfg.to_dict(), "grid": dataclasses.asdict(model.grid),
                      "state_dict": model.state_dict(), "kind": PRIOR_CHECKPOINT.kind, **extra})


def load_prior(path: str | Path, device="cpu", cfg=None) -> Prior:
    """A trained prior in eval mode; with a run's `cfg`, refused unless its architecture is the one the
    run's configuration gives (M parts, T steps, canvas, widths)."""
    ckpt = read_checkpoint(path, device)
    expect = prior_config(cfg, Grid.for_dataset(cfg.ds)).to_dict() if cfg is not None else None
    PRIOR_CHECKPOINT.check(path, ckpt, expect, what=f"this run ({run_name(cfg)})" if cfg is not None else "")
    with PRIOR_CHECKPOINT.rebuilding(path):
        grid = Grid(**ckpt["grid"])
        model = build_prior(ckpt["arch"], ckpt["state_dict"]["bank"], grid)
        model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


