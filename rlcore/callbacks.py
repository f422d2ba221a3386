"""Callbacks for learners, shaped like stable-baselines3's (without a per-env hook in the hot path)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Union


class Callback:
    """Base callback. Hooks return ``False`` (from ``on_step``/``on_rollout_end``) to stop training.

    ``on_step`` runs once per *batched* env step (``N`` transitions), never once per env.
    The learner is available as ``self.model`` once training starts.
    """

    def __init__(self) -> None:
        self.model: Any = None

    def init_callback(self, model: Any) -> None:
        self.model = model

    def on_training_start(self) -> None: ...

    def on_step(self) -> bool:
        return True

    def on_rollout_end(self, metrics: dict[str, float]) -> bool:
        """Called after each update with that iteration's metrics (already plain floats)."""
        return True

    def on_training_end(self) -> None: ...


class CallbackList(Callback):
    def __init__(self, callbacks: Iterable[Callback]) -> None:
        super().__init__()
        self.callbacks = list(callbacks)

    def init_callback(self, model: Any) -> None:
        super().init_callback(model)
        for c in self.callbacks:
            c.init_callback(model)

    def on_training_start(self) -> None:
        for c in self.callbacks:
            c.on_training_start()

    def on_step(self) -> bool:
        return all([c.on_step() for c in self.callbacks])

    def on_rollout_end(self, metrics: dict[str, float]) -> bool:
        return all([c.on_rollout_end(metrics) for c in self.callbacks])

    def on_training_end(self) -> None:
        for c in self.callbacks:
            c.on_training_end()


class FunctionCallback(Callback):
    """Wraps ``fn(metrics, model) -> bool | None`` called at the end of each rollout/update."""

    def __init__(self, fn: Callable[[dict[str, float], Any], Optional[bool]]) -> None:
        super().__init__()
        self.fn = fn

    def on_rollout_end(self, metrics: dict[str, float]) -> bool:
        return self.fn(metrics, self.model) is not False


CallbackLike = Union[None, Callback, Callable, Iterable[Callback]]


def as_callback(callback: CallbackLike) -> Callback:
    """Normalise ``None`` / a Callback / a function / a list of callbacks into one Callback."""
    if callback is None:
        return Callback()
    if isinstance(callback, Callback):
        return callback
    if callable(callback):
        return FunctionCallback(callback)
    return CallbackList([as_callback(c) for c in callback])
