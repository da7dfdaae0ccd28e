"""The generative systems the pipeline trains, scores and samples: the registry.

A system is one model module (a class in npdraw/models/ that meets the written interface,
npdraw.models.interface.GenerativeModel) and one entry of `SYSTEMS` below, which says what the rest
of the pipeline needs to know about it without importing torch: the variant that selects it, its
params section and that section's schema, its random stream, the data it can model, the numbers its
paper reported.  The stage table, the schema, checkpoints, evaluation, tables, the summary, the seeds
and the front doors read this registry; nothing else names a system.

NP-DRAW is the pipeline's own system: it draws on a part bank, parses and a prior (`parts`), its
settings live in the `method`, `prior` and `model` sections, and its variants are `base` and the
ablation tokens (npdraw.workflow.resolve.parse_variant).  Every other system is a baseline, selected by
the variant that is its name and trained by the generic `train_baseline` stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# JSON-schema fragments a section's schema may use (defined in params.schema.yaml).
POSITIVE = {"$ref": "#/$defs/positive_int"}
COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": "number", "exclusiveMinimum": 0}


@dataclass(frozen=True)
class System:
    """One generative system (see the module docstring)."""

    name: str                     # its name: the checkpoint kind, and (baselines) the variant selecting it
    label: str                    # how tables and plots name it
    model: str                    # 'module:Class' of its model, imported only where it is built
    salt: int                     # its training's random stream (npdraw.compute.seeds)
    section: str                  # the params section of its settings (arch + lr, batch_size, epochs)
    schema: dict | None = None    # that section's properties (JSON schema); None: in params.schema.yaml
    parts: bool = False           # draws on a part bank, parses and a prior (NP-DRAW's stages)
    binary_only: bool = True      # needs binary single-channel images (a Bernoulli output)
    image_sizes: tuple[int, ...] | None = (28,)   # image sides its architecture takes (None: any)
    describe: str = ""            # one line: what it is (the README's and tables' gloss)
    # Its decoder models each pixel given the ones before it (a PixelCNN): it can model the images with its
    # latent unused, unlike a decoder that draws every pixel at once from the latent (NP-DRAW, DRAW, the VAE).
    autoregressive: bool = False
    # Numbers its own paper (or NP-DRAW's) reported, by dataset (lower is better; None: not reported):
    # fid (Inception), nll (text with its unit and protocol), fid_other (the best other structured model).
    paper: dict = field(default_factory=dict)

    def refusal(self, ds: dict, dataset: str) -> str | None:
        """Why this system cannot model dataset `ds` (its resolved data and method settings), or None."""
        binary_gray = ds["output"] == "bernoulli" and ds["channels"] == 1
        if self.binary_only and not binary_gray:
            return (f"variant {self.name!r}: {self.label} models binary single-channel images (a Bernoulli "
                    f"output); dataset {dataset!r} has output {ds['output']}, channels {ds['channels']}")
        if self.image_sizes is not None and ds["image_size"] not in self.image_sizes:
            sides = " or ".join(map(str, self.image_sizes))
            return (f"variant {self.name!r}: {self.label}'s architecture takes {sides}-pixel images; dataset "
                    f"{dataset!r} has {ds['image_size']}x{ds['image_size']}")
        return None


# A Gaussian-latent VAE's training settings (the keys every baseline section has).
TRAINING = {"lr": RATE, "batch_size": POSITIVE, "epochs": POSITIVE}

SYSTEMS: dict[str, System] = {s.name: s for s in [
    System("npdraw", "NP-DRAW", "npdraw.models.npdraw:NPDraw", salt=4, section="model", parts=True,
           binary_only=False, image_sizes=None,
           describe="parts drawn on a latent canvas by a Transformer prior (Zeng et al., UAI 2021)",
           paper={"mnist": {"fid": 2.48, "nll": "<= 98.92 nats", "fid_other": "19.64 (VQ-DRAW / DRAW)"},
                  "omniglot": {"fid": 5.53, "nll": "<= 129.73 nats", "fid_other": "47.22 (VQ-DRAW / DRAW)"},
                  "cifar10": {"fid": 62.72, "nll": "<= 5.48 bpd", "fid_other": "80.19 (VQ-DRAW / DRAW)"},
                  "celeba": {"fid": 41.10, "nll": "<= 5.89 bpd", "fid_other": "41.87 (VQ-DRAW / DRAW)"}}),
    System("pixelvae", "PixelVAE", "npdraw.models.pixelvae:PixelVAE", salt=5, section="pixelvae",
           schema={"latent": POSITIVE, "pixelcnn_layers": COUNT, "width": POSITIVE, **TRAINING}, autoregressive=True,
           describe="a VAE with a gated PixelCNN decoder (Gulrajani et al., ICLR 2017; appendix E.1)",
           paper={"mnist": {"nll": "79.48 (<= 80.02) nats (gated PixelVAE, static binarization, S = 5,000)"},
                  "binarized_mnist": {"nll": "79.48 (<= 80.02) nats (gated PixelVAE, S = 5,000)"}}),
    System("vae", "VAE", "npdraw.models.vae:ConvVAE", salt=9, section="vae",
           schema={"latent": POSITIVE, **TRAINING},
           describe="a convolutional VAE: the PixelVAE without its PixelCNN (Gaussian latent, Bernoulli pixels)",
           paper={"mnist": {"nll": "<= 87.41 nats (conv VAE, static binarization; Gulrajani et al. 2017)"},
                  "binarized_mnist": {"nll": "<= 87.41 nats (conv VAE; Gulrajani et al. 2017)"}}),
    System("draw", "DRAW", "npdraw.models.draw:DRAW", salt=10, section="draw",
           schema={"steps": POSITIVE, "hidden": POSITIVE, "latent": POSITIVE, "read": POSITIVE, "write": POSITIVE,
                   "attention": {"type": "boolean"}, **TRAINING},
           image_sizes=None,
           describe="recurrent VAE writing to a canvas through selective attention (Gregor et al., ICML 2015)",
           paper={"mnist": {"nll": "<= 80.97 nats (DRAW with attention; Gregor et al. 2015)"}}),
]}

BASELINES = tuple(name for name, s in SYSTEMS.items() if not s.parts)


def system(name: str) -> System:
    """The registry entry of system `name` (a ValueError naming the systems there are, if none)."""
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ValueError(f"unknown system {name!r}: expected one of {', '.join(SYSTEMS)}") from None


def sections() -> dict[str, System]:
    """{params section: system} of the systems whose section this registry defines (the baselines')."""
    return {s.section: s for s in SYSTEMS.values() if s.schema is not None}
