"""Stage edit_latents: latent-space editing figure (paper Fig. 4).

Encodes test images A and B, pastes a region of canvas B onto canvas A and
decodes the result.  Each row: A | decoded A | B | canvas A | canvas B |
edited canvas | decoded edit.
"""

import numpy as np
import torch

from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits
from npdraw.evaluation.editing import paste_region
from npdraw.models.checkpoints import load_model
from npdraw.reporting.viz import image_grid, titled
from npdraw.runtime.cli import main, run_config, stage_parser
from npdraw.runtime.config import ParamsError
from npdraw.runtime.io import save_image


def run() -> None:
    p = stage_parser("edit_latents", __doc__)
    p.add_argument("--pairs", type=int, default=8, help="(A, B) pairs: test images 2i and 2i+1")
    p.add_argument("--region", type=int, nargs=4, metavar=("R0", "R1", "C0", "C1"),
                   help="canvas rows R0:R1 and columns C0:C1 taken from B (default: the right half)")
    args = p.parse_args()
    cfg = run_config(args)
    side = cfg.ds.canvas_size
    region = tuple(args.region) if args.region else (0, side, side // 2, side)
    model = load_model(args.model, cfg=cfg)
    arrays = load_prepared(args.data, cfg)
    test = load_splits(args.splits, arrays)["test"]
    if len(test) < 2 * args.pairs:
        raise ParamsError(f"--pairs {args.pairs}: the run's test set has only {len(test)} images")
    images = torch.from_numpy(np.asarray(arrays["test_images"][test[:2 * args.pairs]]))
    x = fixed_targets(images, cfg.ds.output == "bernoulli", cfg.seed)
    try:
        out = paste_region(model, x[0::2], x[1::2], region)
    except ValueError as err:
        raise ParamsError(f"--region: {err}") from None
    up = lambda c: torch.nn.functional.interpolate(c, size=cfg.ds.image_size)  # noqa: E731
    columns = [x[0::2], out["decoded_a"], x[1::2], up(out["canvas_a"]), up(out["canvas_b"]), up(out["edited"]),
               out["decoded_edited"]]
    grid = image_grid(torch.stack(columns, 1).flatten(0, 1), ncol=len(columns), scale=3)
    save_image(args.out, titled(grid, f"A | dec A | B | canvas A | canvas B | A + B[{region}] | decoded"))


if __name__ == "__main__":
    main(run)
