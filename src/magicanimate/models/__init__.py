"""Neural network modules of MagicAnimate (temporal UNet, appearance encoder, reference attention)."""
