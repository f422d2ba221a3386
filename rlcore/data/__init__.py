"""Trajectory data: the dataset type, samplers, the batched collector and safe save/load.

See :mod:`rlcore.data.dataset` for the layout. Typical use::

    from rlcore.data import collect, save_dataset, load_dataset
    demos = collect(env, expert, n_episodes=200, seed=0)   # TrajectoryDataset on env.device
    save_dataset(demos, "demos.safetensors")
    batch = load_dataset("demos.safetensors").sample(256)  # TransitionBatch[256]
"""

from rlcore.data.collect import collect, random_policy
from rlcore.data.dataset import DatasetError, TrajectoryDataset
from rlcore.data.io import DATASET_FORMAT, check_dataset_spaces, load_dataset, save_dataset
from rlcore.data.minari_io import load_minari, save_minari
from rlcore.data.mix import REF_EXPERT, REF_RANDOM, concat_datasets, make_mixed, normalized_score
from rlcore.data.sampler import Sampler, UniformSampler, WeightedSampler
from rlcore.data.weights import BASELINES, WEIGHT_MODES, check_sampler_args, make_sampler, trajectory_weights

__all__ = ["collect", "random_policy", "DatasetError", "TrajectoryDataset", "DATASET_FORMAT", "check_dataset_spaces",
           "load_dataset", "save_dataset", "Sampler", "UniformSampler", "WeightedSampler", "BASELINES", "WEIGHT_MODES",
           "check_sampler_args", "make_sampler", "trajectory_weights", "REF_EXPERT", "REF_RANDOM", "concat_datasets",
           "make_mixed", "normalized_score", "load_minari", "save_minari"]
