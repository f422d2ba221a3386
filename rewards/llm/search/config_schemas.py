"""Defaults of the ``llm`` config group that come from a dataclass, registered with Hydra.

``configs/llm/offline.yaml`` lists ``offline_schema`` first in its defaults and then sets only what
differs, so each setting of the offline proposer has one default: its field in
:class:`~rewards.llm.search.offline.OfflineConfig`. (``openai.yaml`` and ``replay.yaml`` are complete
plain files, loadable without Hydra; a test checks that they agree with the keyword defaults of
:class:`~rewards.llm.search.client.OpenAIChatClient` and
:class:`~rewards.llm.search.transcript.ReplayClient`.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rewards.llm.search.offline import OfflineConfig


def llm_schemas() -> dict[str, dict[str, Any]]:
    """Node name (in group ``llm``) -> the full default ``llm`` config it stands for."""
    return {"offline_schema": {"name": "offline", **dataclasses.asdict(OfflineConfig())}}


def register_llm_schemas() -> None:
    """Store :func:`llm_schemas` in Hydra's config store, group ``llm`` (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, node in llm_schemas().items():
        store.store(group="llm", name=name, node=node)
