"""Stage edit_latents: latent-space editing figure (paper Fig. 4).

Encodes test images A and B, pastes a region of canvas B onto canvas A and
decodes the result.  Each row: A | decoded A | B | canvas A | canvas B |
edited canvas | decoded edit.
"""

import numpy as np
import torch

from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import save_image
from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits
from npdraw.models.checkpoints import load_model
from npdraw.reporting.edits import latent_edit
from npdraw.workflow.cli import main, run_config, stage_parser


def run() -> None:
    p = stage_parser("edit_latents", __doc__)
    p.add_argument("--pairs", type=int, default=8, help="(A, B) pairs: test images 2i and 2i+1")
    p.add_argument("--region", type=int, nargs=4, metavar=("R0", "R1", "C0", "C1"),
                   help="canvas rows R0:R1 and columns C0:C1 taken from B (default: the right half)")
    args = p.parse_args()
    cfg = run_config(args)
    region = tuple(args.region) if args.region else None   # None: the canvas's right half
    model = load_model(args.model, cfg=cfg)
    arrays = load_prepared(args.data, cfg)
    test = load_splits(args.splits, arrays)["test"]
    if len(test) < 2 * args.pairs:
        raise ParamsError(f"--pairs {args.pairs}: the run's test set has only {len(test)} images")
    images = torch.from_numpy(np.asarray(arrays["test_images"][test[:2 * args.pairs]]))
    x = fixed_targets(images, cfg.ds.output == "bernoulli", cfg.seed)   # (2P, C, H, W), pairs interleaved
    try:
        figure = latent_edit(model, x, region)
    except ValueError as err:
        raise ParamsError(f"--region: {err}") from None
    save_image(args.out, figure)


if __name__ == "__main__":
    main(run)
