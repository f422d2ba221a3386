"""A GIF of one episode of a trained candidate's policy, for a person ranking candidates (preference mode).

The policy is loaded from the candidate's ``final_model.pt`` through the algorithm class named in its
training config (``algo.class_path``, as the training app does) and played with sampled actions, as
in evaluation, in one env built from the same env config. Frames come from the env's
``render_rgb(index)`` (the batched MiniGrid draws with Farama's renderer); envs without it have no GIF.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from omegaconf import OmegaConf


def policy_gif(train_dir: Path, env_id: str, out_path: Path, seed: int = 0, max_steps: Optional[int] = None,
               fps: float = 8.0) -> str:
    """Play one episode of the policy trained in ``train_dir`` and save it as a GIF at ``out_path``.

    Raises ``ValueError`` if the env cannot render frames.
    """
    from hydra.utils import get_class
    from PIL import Image

    from rlcore.make_env import make_env

    cfg = OmegaConf.load(Path(train_dir) / "config.yaml")
    env = make_env(cfg.env, "cpu", seed=seed + 20_000, num_envs=1)
    if not hasattr(env, "render_rgb"):
        raise ValueError(f"{env_id} has no render_rgb(); no GIF for this env")
    model = get_class(str(cfg.algo.class_path)).load(str(Path(train_dir) / "final_model.pt"))
    obs, _ = env.reset(seed=seed + 20_000)
    gen = torch.Generator().manual_seed(seed)
    frames = [env.render_rgb(0)]
    limit = int(max_steps or getattr(env, "max_steps", 0) or 1000)
    for _ in range(limit):
        with torch.no_grad():
            actions, _, _ = model.policy.act(obs, generator=gen)
        obs, _, terminated, truncated, info = env.step(model.policy.env_actions(actions))
        if bool((terminated | truncated)[0]):
            break
        frames.append(env.render_rgb(0))
    env.close()
    out_path = Path(out_path)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(out_path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return str(out_path)
