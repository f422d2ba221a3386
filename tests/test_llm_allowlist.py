"""The allowlist of torch functions and tensor methods reward code may use (rewards/llm/sandbox/allowlist.py)."""

from __future__ import annotations

import importlib

import pytest
import torch

from rewards.llm.sandbox import RewardCodeError, check_code
from rewards.llm.sandbox.allowlist import MODULE_FUNCTIONS, OBJECT_ATTRIBUTES


def _reward(body: str, prelude: str = "") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"""{prelude}
def compute_reward(state, action, next_state):
{lines}
    r = action.float() * 0.0
    return r, {{}}
"""


def test_every_allowlisted_name_exists_in_this_torch():
    for module, names in MODULE_FUNCTIONS.items():
        mod = importlib.import_module(module)
        assert not [n for n in names if not hasattr(mod, n)], module
    holders = [torch.Tensor, dict, list, str, int, float, torch.finfo(torch.float32), torch.Size, torch.device("cpu"),
               torch.float32, torch.zeros(3).max(0)]
    assert not [n for n in OBJECT_ATTRIBUTES if not any(hasattr(h, n) for h in holders)]


@pytest.mark.parametrize("name", [
    "data_ptr", "const_data_ptr", "mutable_data_ptr", "untyped_storage", "storage", "storage_type", "storage_offset",
    "type", "to_sparse", "to_sparse_csr", "to_sparse_coo", "sparse_mask", "as_strided", "set_", "resize_", "numpy",
    "new_empty", "new", "backward", "register_hook", "as_subclass", "apply_", "share_memory_", "pin_memory",
])
def test_raw_memory_and_import_hatches_are_not_allowlisted(name):
    assert name not in OBJECT_ATTRIBUTES
    with pytest.raises(RewardCodeError, match=name):
        check_code(_reward(f"x = action.{name}"))


@pytest.mark.parametrize("expr", [
    "torch.sparse_coo_tensor(torch.zeros(1, 1, dtype=torch.long), torch.ones(1), (8,), check_invariants=False)",
    "torch.sparse_csr_tensor(action, action, action.float())",
    "torch.empty(8)",
    "torch.empty_like(action)",
    "torch.empty_strided((2,), (1,))",
    "torch.as_strided(action, (8,), (1,))",
    "torch.from_file('x')",
    "torch.Tensor.type(action, 'torch.FloatTensor')",
    "torch.Tensor.data_ptr(action)",
    "action.storage_type()(1).type('this')",
    "action.float().untyped_storage()",
    "action.const_data_ptr()",
    "torch.nn.functional.embedding(action, torch.ones(4, 4))",
    "torch.linalg.eig(torch.ones(2, 2))",
])
def test_calls_outside_the_allowlist_are_refused(expr):
    with pytest.raises(RewardCodeError, match="not one of|not allowed|not available"):
        check_code(_reward(f"x = {expr}"))


def test_refusal_names_the_call_and_suggests_close_names():
    with pytest.raises(RewardCodeError) as err:
        check_code(_reward("x = torch.sparse_coo_tensor(action, action, (8,))"))
    assert "torch.sparse_coo_tensor" in err.value.reason and "line 3" in err.value.reason
    with pytest.raises(RewardCodeError) as err:
        check_code(_reward("x = action.flaot()"))
    assert "'.flaot'" in err.value.reason and "'float'" in err.value.reason


def test_from_import_outside_the_allowlist_is_refused():
    with pytest.raises(RewardCodeError, match="sparse_coo_tensor"):
        check_code(_reward("x = action", prelude="from torch import sparse_coo_tensor"))
    check_code(_reward("x = clamp(action, 0, 1)", prelude="from torch import clamp"))


def test_out_argument_is_refused():
    with pytest.raises(RewardCodeError, match="'out='"):
        check_code(_reward("buf = torch.zeros(8)\ntorch.add(buf, buf, out=buf)"))


@pytest.mark.parametrize("body", [
    "x = torch.where(action > 2, torch.ones_like(action), torch.zeros_like(action)).float().clamp(0, 1)",
    "x = torch.nn.functional.one_hot(action.long(), 7).float().sum(-1)",
    "x = next_state['agent_pos'].float().norm(dim=-1).max(dim=-1).values",
    "x = torch.tensor([1.0, 0.0], device=action.device, dtype=torch.float32) * math.pi",
    "x = torch.finfo(torch.float32).eps + torch.iinfo(torch.int64).max",
    "x = [v.float().mean() for k, v in sorted(state.items()) if k.startswith('agent')]",
    "x = torch.linalg.vector_norm(action.float().unsqueeze(-1), dim=-1)",
    "x = torch.special.expit(action.float()) + torch.exp(-action.float()).tanh()",
    "x = torch.Tensor.float(action).gather(0, action.long().clamp(0, 0))",
])
def test_common_reward_code_is_accepted(body):
    check_code(_reward(body))


def test_float_inf_and_nan_constants_are_accepted_at_the_top_level():
    check_code(_reward("x = action.float().clamp(max=BIG) + NEG", prelude="BIG = float('inf')\nNEG = -float(\"-inf\")"))
    with pytest.raises(RewardCodeError, match="top-level assignments may only hold constants"):
        check_code(_reward("x = action", prelude="X = float(action)"))
