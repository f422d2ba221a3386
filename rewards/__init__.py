"""Reward modules: intrinsic bonuses (``rewards.intrinsic``) and, later, learned and LLM-written rewards."""
