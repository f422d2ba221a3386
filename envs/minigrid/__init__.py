"""Batched MiniGrid on torch."""
