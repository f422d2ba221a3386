"""Pictures and videos of batched MiniGrid envs (host side, not for the training loop).

    >>> import torch, envs.minigrid as mg
    >>> from envs.minigrid.render import save_gif, tile_frames
    >>> env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=4, seed=0)
    >>> frames = []
    >>> for _ in range(20):
    ...     frames.append(tile_frames(env.render_rgb_batch(tile_size=16)))
    ...     _ = env.step(torch.randint(0, 7, (4,)))
    >>> save_gif(frames, "doorkey.gif", fps=8)  # doctest: +SKIP

Frames come from :meth:`BatchedMiniGrid.render_rgb` / :meth:`~BatchedMiniGrid.render_rgb_batch`
(Farama's renderer applied to a batch slot's state).
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import torch


def _as_uint8_hwc(frame) -> np.ndarray:
    a = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if a.dtype != np.uint8:
        raise TypeError(f"frames must be uint8 RGB images, got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"a frame must be uint8[H, W, 3], got shape {a.shape}")
    return a


def tile_frames(frames, ncols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Lay ``B`` frames (``uint8[B, H, W, 3]`` array/tensor or a list of equal-size frames) out as one
    image of ``ceil(B / ncols)`` rows and ``ncols`` columns (default: about square), separated by
    ``pad`` pixels of ``pad_value``. Useful to film a whole batch in one video."""
    fs = [_as_uint8_hwc(f) for f in frames]
    if not fs:
        raise ValueError("tile_frames needs at least one frame")
    h, w, _ = fs[0].shape
    if any(f.shape != fs[0].shape for f in fs):
        raise ValueError("tile_frames needs frames of one size")
    b = len(fs)
    ncols = int(np.ceil(np.sqrt(b))) if ncols is None else max(1, min(int(ncols), b))
    nrows = -(-b // ncols)
    out = np.full((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad, 3), pad_value, dtype=np.uint8)
    for k, f in enumerate(fs):
        r, c = divmod(k, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = f
    return out


def save_gif(frames: Iterable, path: str | os.PathLike, fps: float = 10.0, loop: int = 0) -> str:
    """Write RGB frames (each ``uint8[H, W, 3]``, numpy or torch; or one ``uint8[T, H, W, 3]`` array)
    as an animated GIF at ``path`` with ``fps`` frames per second; ``loop=0`` repeats forever.

    Pillow stores a run of identical consecutive frames as one frame shown for the run's total time:
    playback timing is kept, but such a file holds fewer GIF frames than were given (a file made of
    distinct consecutive frames holds exactly one per input frame). Returns ``path`` as a string.
    """
    from PIL import Image

    fs = [_as_uint8_hwc(f) for f in frames]
    if not fs:
        raise ValueError("save_gif needs at least one frame")
    if any(f.shape != fs[0].shape for f in fs):
        raise ValueError("save_gif needs frames of one size")
    images = [Image.fromarray(np.ascontiguousarray(f), mode="RGB") for f in fs]
    duration = max(1, int(round(1000.0 / fps)))
    images[0].save(os.fspath(path), save_all=True, append_images=images[1:], duration=duration, loop=loop,
                   optimize=False, disposal=1)
    return os.fspath(path)


__all__ = ["save_gif", "tile_frames"]
