import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/toy_envs.py


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def compose_cfg():
    """Compose the training config with overrides, as the CLI would (no run dir created)."""
    from rlcore.config import compose_config

    def _compose(*overrides: str, config_name: str = "train"):
        return compose_config(config_name, overrides)

    return _compose


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Small networks run faster on one thread, and the suite stays predictable on 2-core CI."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
