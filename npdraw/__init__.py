"""NP-DRAW: a reproducible pipeline (part bank, parser, prior, model, evaluation), and its trained models
in use: `npdraw.load()` (npdraw.app.api) and the `npdraw` command (npdraw.app.cli)."""

__version__ = "0.1.0"


def load(path=None):
    """A trained model of any system (npdraw.app.api.TrainedModel) from a checkpoint a run wrote; default: the
    committed reference model.  Imported here lazily: `import npdraw` needs no torch."""
    from npdraw.app.api import load as _load

    return _load(path)
