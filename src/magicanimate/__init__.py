"""MagicAnimate: temporally consistent human image animation (Xu et al., CVPR 2024)."""

__version__ = "0.1.0"
