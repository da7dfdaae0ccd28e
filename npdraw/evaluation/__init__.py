"""Scoring trained models: importance-sampled NLL and sampling (importance), feature extractors and
FID / KID (features), latent editing (editing)."""
