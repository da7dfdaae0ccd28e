"""The networks: the Transformer prior, NP-DRAW, the PixelCNN decoder, the PixelVAE baseline, and
what their checkpoints hold (checkpoints)."""
