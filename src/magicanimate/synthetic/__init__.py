"""Synthetic people and motions drawn from geometry (no detector, no weights)."""
