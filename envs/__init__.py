"""Batched torch environments (MiniGrid family) behind the library's batched-env contract."""
