"""The `npdraw` command: a trained model of any system, used without the pipeline.

    npdraw sample -n 16 --out samples.png             samples (NP-DRAW: canvases above the decoded images)
    npdraw score digit.png other.npz                  importance-sampled NLL of each image (nats)
    npdraw reconstruct digit.png --out rec.png        each image beside the decoder's mean of its posterior
    npdraw parse digit.png --out parse.png            NP-DRAW: the heuristic parse and the posterior's canvas
    npdraw edit a.png b.png --region 0:28,14:28       NP-DRAW: canvas B's region pasted onto canvas A, decoded
    npdraw edit --serve                               NP-DRAW: the part-by-part editor in the browser

Every command takes --model (default: the committed reference model, results/reference/mnist/model.pt;
any run's model/best.pt, NP-DRAW's or a baseline's) and PNG or NPZ images in (28x28 grey for MNIST and
Omniglot models, ink bright; --invert for dark ink on light paper); --out writes a PNG picture or, with a
.npz name, the arrays.  A bad file, an image of another size or colour, a number out of its range, an
output path that is a folder, or a damaged checkpoint ends with one `error:` line and exit 2.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from npdraw.app.api import COUNT, REFERENCE_MODEL, SAMPLES, load
from npdraw.app.files import read_images, write_output
from npdraw.artifacts.bounds import PORT, SEED
from npdraw.artifacts.errors import NpdrawError
from npdraw.reporting.figures import upscale
from npdraw.reporting.viz import image_grid, titled


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="npdraw", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{sample,score,reconstruct,parse,edit}")

    def command(name: str, help: str, images: str | None = None) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("--model", default=str(REFERENCE_MODEL), help="a checkpoint a run wrote (model/best.pt; "
                                                                     "default: %(default)s)")
        if images:
            c.add_argument("images", nargs="*" if name == "edit" else "+", metavar="IMAGE", help=images)
            c.add_argument("--invert", action="store_true", help="the images are dark ink on light paper")
        return c

    s = command("sample", "draw samples from the prior and decode them")
    s.add_argument("-n", type=COUNT.parse, default=16, help=f"how many, {COUNT.low} to {COUNT.high:,} (default "
                                                             f"%(default)s)")
    s.add_argument("--seed", type=SEED.parse, default=0, help=f"0 to {SEED.high:,}")
    s.add_argument("--out", default="samples.png", help=".png picture or .npz arrays (default %(default)s)")
    s = command("parse", "the heuristic parse of images and the posterior's canvas, side by side",
                "PNG or NPZ images")
    s.add_argument("--out", default="parse.png", help=".png picture or .npz arrays (default %(default)s)")
    s = command("edit", "paste a region of image B's canvas onto image A's and decode (paper Fig. 4); or "
                        "--serve the part-by-part editor", "two images, A and B (not with --serve)")
    s.add_argument("--region", default=None, help="rows r0:r1 and columns c0:c1 of the canvas, as 'r0:r1,c0:c1' "
                                                  "(default: its right half)")
    s.add_argument("--out", default="edit.png", help=".png picture or .npz arrays (default %(default)s)")
    s.add_argument("--serve", action="store_true", help="open the editor in the browser instead")
    s.add_argument("--host", default="127.0.0.1", help="the editor's address (default: this machine only)")
    s.add_argument("--port", type=PORT.parse, default=8765, help=f"{PORT.low} to {PORT.high} (default %(default)s)")
    s.add_argument("--dataset", default="mnist", help="whose test images the editor can start from (default "
                                                      "%(default)s; read from the data mirror)")
    s.add_argument("--no-browser", action="store_true", help="do not open a browser, print the address only")
    s = command("score", "the importance-sampled NLL of each image (an upper bound on -log p(x), nats)",
                "PNG or NPZ images")
    s.add_argument("--samples", type=SAMPLES.parse, default=None,
                   help=f"importance samples S, {SAMPLES.low} to {SAMPLES.high:,} (default: evaluate.nll_samples)")
    s.add_argument("--out", default=None, help="also write the numbers: .npz (or nothing)")
    s = command("reconstruct", "each image beside the decoder's mean of its posterior", "PNG or NPZ images")
    s.add_argument("--out", default="reconstructions.png", help=".png picture or .npz arrays (default %(default)s)")
    return p


PICTURE_COLUMNS = 32   # samples a sample picture shows


def region_of(text: str | None, side: int) -> tuple[int, int, int, int]:
    if text is None:
        return (0, side, side // 2, side)
    try:
        rows, cols = text.split(",")
        (r0, r1), (c0, c1) = (tuple(int(v) for v in part.split(":")) for part in (rows, cols))
    except ValueError:
        raise NpdrawError(f"--region {text!r}: expected 'r0:r1,c0:c1', e.g. 0:{side},{side // 2}:{side}") from None
    if not (0 <= r0 < r1 <= side and 0 <= c0 < c1 <= side):
        raise NpdrawError(f"--region {text!r}: expected 0 <= r0 < r1 <= {side} and 0 <= c0 < c1 <= {side}")
    return r0, r1, c0, c1


def run(args: argparse.Namespace) -> str:
    """Carry out one command; return what to print."""
    if args.command == "edit" and args.serve:
        from npdraw.app.editor import serve
        serve(args.model, args.host, args.port, args.dataset, not args.no_browser)
        return ""
    if args.command == "edit" and len(args.images) != 2:
        raise NpdrawError(f"edit: {len(args.images)} images; expected two, A and B (or --serve)")
    model = load(args.model)
    side = model.image_size
    if args.command == "sample":
        d = model.sample(args.n, args.seed)
        shown = min(args.n, PICTURE_COLUMNS)   # the picture shows the first ones; the .npz holds them all
        rows = [(upscale_np(d["canvases"][:shown], side), "sampled canvases")] if "canvases" in d else []
        rows += [(d["means"][:shown], "decoder's means")] if "means" in d else []
        rows.append((d["images"][:shown], "samples"))
        picture = titled(image_grid(np.concatenate([r for r, _ in rows]), ncol=shown, scale=3),
                         f"{model.system.label}: " + " | ".join(name for _, name in rows)
                         + (f" (the first {shown} of {args.n:,})" if shown < args.n else ""))
        return f"wrote {write_output(args.out, picture, d)}"
    images, names = read_images(args.images, model.channels, side, args.invert)
    if args.command == "reconstruct":
        decoded = model.reconstruct(images)
        x = images.astype(np.float32) / 255
        picture = titled(image_grid(np.stack([x, decoded], 1).reshape(-1, *x.shape[1:]), ncol=2, scale=4),
                         f"{model.system.label}: image | the decoder's mean of its posterior")
        return f"wrote {write_output(args.out, picture, {'images': images, 'reconstructions': decoded})}"
    if args.command == "parse":
        x = images.astype(np.float32) / 255
        parsed, posterior = model.parse(images), model.encode(images)
        decoded = model.decode(posterior)["means"]
        picture = titled(image_grid(np.stack([x, upscale_np(parsed["canvases"], side),
                                              upscale_np(posterior["canvases"], side), decoded], 1)
                                    .reshape(-1, *x.shape[1:]), ncol=4, scale=4),
                         "image | heuristic parse | posterior's canvas | decoded")
        arrays = {"images": images, **{f"parse_{k}": v for k, v in parsed.items()},
                  **{f"posterior_{k}": v for k, v in posterior.items()}, "decoded": decoded}
        return f"wrote {write_output(args.out, picture, arrays)}"
    if args.command == "edit":
        if len(images) != 2:
            raise NpdrawError(f"edit: {len(images)} images (an NPZ holds several); expected two, A and B")
        model.bank   # noqa: B018 (a system without parts says so, before the region is read)
        region = region_of(args.region, model.grid.side)
        import torch

        from npdraw.reporting.edits import latent_edit
        picture = latent_edit(model.model, torch.from_numpy(images.astype(np.float32) / 255), region)
        a, b = model.encode(images[:1]), model.encode(images[1:])
        edited = a["canvases"].copy()
        r0, r1, c0, c1 = region
        edited[..., r0:r1, c0:c1] = b["canvases"][..., r0:r1, c0:c1]
        arrays = {"canvas_a": a["canvases"], "canvas_b": b["canvases"], "edited": edited,
                  "decoded": model.decode(canvas=edited)["means"]}
        return f"wrote {write_output(args.out, picture, arrays)}"
    nll = model.log_likelihood(images, args.samples)
    if args.out:
        write_output(args.out, None, {"nll_nats": nll})
    return "\n".join(f"{name}\t{value:.2f} nats" for name, value in zip(names, nll))


def upscale_np(canvases: np.ndarray, side: int) -> np.ndarray:
    import torch
    return upscale(torch.from_numpy(canvases), side).numpy()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        text = run(args)
    except NpdrawError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if text:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
