"""Training: one resumable, data-parallel epoch loop (loop) used by the prior, the full model, the
PixelVAE and the domain classifier."""
