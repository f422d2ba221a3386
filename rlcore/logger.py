"""Run logging: TensorBoard event files, ``progress.csv``, and a learning-curve PNG."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Iterable, Optional

from rlcore.atomic import atomic_write_text


class RunLogger:
    """Writes scalar metrics to TensorBoard and to ``progress.csv`` in ``run_dir``.

    Args:
        run_dir: the run directory.
        extra_columns: CSV columns that appear only in some rows (e.g. evaluations). The other
            columns are the keys of the first logged row; keys first seen later go to TensorBoard only.
        tensorboard: write TensorBoard event files under ``run_dir/tb``.
        resume_step: when resuming, rows (and TensorBoard events) after this timestep are dropped,
            since the run restarts from the checkpoint taken there; the existing header is kept.
    """

    def __init__(self, run_dir: str | os.PathLike, extra_columns: Iterable[str] = (), tensorboard: bool = True,
                 resume_step: Optional[int] = None) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "progress.csv"
        self.extra_columns = list(extra_columns)
        self.columns: Optional[list[str]] = None
        self._rows: list[dict[str, str]] = []
        if resume_step is not None and self.csv_path.exists():
            with open(self.csv_path, newline="") as f:
                reader = csv.DictReader(f)
                self._rows = [r for r in reader if _as_float(r.get("time/timesteps")) <= resume_step]
                self.columns = list(reader.fieldnames or []) or None
        self._file = None
        self._writer = None
        if self.columns is not None:
            self._open()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=resume_step)

    def _open(self) -> None:
        """Write the header and the kept rows atomically (a kill while resuming leaves the old file),
        then append new rows to it."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, restval="", extrasaction="ignore")
        writer.writeheader()
        for r in self._rows:
            writer.writerow(r)
        atomic_write_text(self.csv_path, buffer.getvalue())
        self._file = open(self.csv_path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, restval="", extrasaction="ignore")

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.columns is None:
            self.columns = list(dict.fromkeys(["time/timesteps", *metrics, *self.extra_columns]))
            self._open()
        row = dict(metrics)
        row["time/timesteps"] = step
        self._writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
        self._file.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def _as_float(x: Optional[str]) -> float:
    try:
        return float(x) if x not in (None, "") else math.inf
    except ValueError:
        return math.inf


def plot_learning_curve(csv_path: str | os.PathLike, png_path: str | os.PathLike, title: str = "",
                        x_label: str = "environment steps") -> Path:
    """Plot episode return and success rate (training rollouts and evaluations) against the
    ``time/timesteps`` column (env frames, or gradient steps for an offline learner: ``x_label``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))

    def series(key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for r in rows:
            y = r.get(key, "")
            if y not in ("", None):
                xs.append(float(r["time/timesteps"]))
                ys.append(float(y))
        return xs, ys

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (train_key, eval_key, label) in zip(
        axes,
        [("rollout/ep_return_mean", "eval/return_mean", "episode return"),
         ("rollout/success_rate", "eval/success_rate", "success rate")],
    ):
        x, y = series(train_key)
        if x:
            ax.plot(x, y, label="training episodes", alpha=0.8)
        x, y = series(eval_key)
        if x:
            ax.plot(x, y, "o-", label="evaluation")
        ax.set_xlabel(x_label)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
