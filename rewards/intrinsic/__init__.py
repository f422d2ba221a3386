"""Exploration bonuses (intrinsic reward modules) and their combinations."""
