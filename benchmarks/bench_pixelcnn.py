"""Benchmark: the autoregressive decoders (method §12) on this machine.

PixelVAE (MNIST architecture) and the gated PixelCNN alone, for several depths
and widths: training images/s (forward + backward + Adam, batch 100),
importance-sampling passes (one teacher-forced pass per sample, images/s) and
exact ancestral sampling (windowed, images/s), plus how much the window saves
against full-image passes.
"""

import argparse
import time

import torch

from benchmarks.common import machine
from npdraw.models.pixelvae import PixelVAE, PixelVAEConfig


def rate(fn, images: int, repeats: int = 3) -> float:
    fn()                                              # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return images * repeats / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--sample-batch", type=int, default=100)
    args = p.parse_args()
    print(f"machine: {machine()}")
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((args.batch, 1, 28, 28), 0.15))
    for layers, width in ((1, 16), (1, 32), (3, 32)):
        model = PixelVAE(PixelVAEConfig(latent=32, pixelcnn_layers=layers, width=width))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(model=model, opt=opt):
            t = model.terms(x)
            loss = -(t["log_px"] - t["kl"]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        train = rate(step, args.batch)
        model.eval()
        score = rate(lambda model=model: model.log_weights(x, x, 1), args.batch)
        h = model.decode(torch.randn(args.sample_batch, 32)).detach()
        start = time.perf_counter()
        model.output.sample(h, torch.Generator().manual_seed(0))
        sample = args.sample_batch / (time.perf_counter() - start)
        with torch.no_grad():
            full_pass = rate(lambda model=model, h=h: model.output.net(torch.zeros(args.sample_batch, 1, 28, 28), h),
                             args.sample_batch, repeats=5)
        print(f"PixelVAE, {layers} PixelCNN block(s) of width {width}: train {train:.0f} images/s; "
              f"IS pass {score:.0f} images/s (S = 50: {score / 50:.1f} images/s); ancestral sampling "
              f"{sample:.1f} images/s (784 full-image passes would give {full_pass / 784:.1f})")


if __name__ == "__main__":
    main()
