"""NP-DRAW: a reproducible pipeline (part bank, parser, prior, model, evaluation)."""

__version__ = "0.1.0"
