"""Sandbox for reward code written by a language model.

The code a model writes must define one function::

    def compute_reward(state, action, next_state):
        # state, next_state: dict[str, Tensor[N, ...]] (``env.get_state()``), action: Tensor[N, ...]
        return reward, components   # float32[N], dict[str, Tensor[N]]

Four layers stand between that code and the training process (see ``docs/llm_sandbox.md``):

1. :func:`check_code` (:mod:`.policy`) — an AST policy: one ``compute_reward``, imports of torch/math
   only (typing imports, annotations, ``torch.jit.script``-style decorators and ``with torch.no_grad():``
   are accepted and removed before the check), no names like ``eval``/``open``/``getattr``, no
   attributes starting with ``_``, only the torch functions and tensor methods of the allowlist
   (:mod:`.allowlist`), module attributes resolved at check time, no ``class``/``try``/other
   ``with``/``global``/``yield``/other decorators, no attribute assignment, no in-place tensor
   methods, no nesting deeper than ``MAX_AST_DEPTH``.
2. Restricted builtins (:data:`SAFE_BUILTINS`, :mod:`.runtime`) as ``__builtins__`` when the code runs.
3. :func:`validate_in_subprocess` (:mod:`.child`) — a fresh Python process with CPU-time and
   address-space limits, secret-looking environment variables removed (:func:`child_environment`,
   :mod:`.process`) and a temporary working directory, running the function on states sampled from
   the env (:func:`sample_states`, :mod:`.states`).
4. Output checks (:func:`check_reward_outputs`) on every call of the compiled :class:`RewardFunction`
   (at most ``DEFAULT_MAX_COMPONENTS`` components, sanitised names, finite as float32), which calls the
   code on copies of its inputs (:func:`copy_inputs`).

:func:`compile_reward` (:mod:`.pipeline`) runs all of them. The package imports only the standard
library, torch and its own modules: the validation child loads it by path.
"""

from .child import validate_in_subprocess
from .pipeline import compile_reward
from .policy import (ALLOWED_MODULES, DEFAULT_MAX_COMPONENTS, DENIED_ATTRIBUTES, FORBIDDEN_NAMES,
                     MAX_COMPONENT_NAME_CHARS, RewardCodeError, check_code)
from .process import ChildResult, child_environment, run_child
from .runtime import (SAFE_BUILTINS, RewardFunction, ValidationReport, check_reward_outputs, copy_inputs,
                      format_user_exception, sanitize_component_name, tensor_stats)
from .states import sample_states

__all__ = [
    "ALLOWED_MODULES", "DEFAULT_MAX_COMPONENTS", "DENIED_ATTRIBUTES", "FORBIDDEN_NAMES", "MAX_COMPONENT_NAME_CHARS",
    "SAFE_BUILTINS", "ChildResult", "RewardCodeError", "RewardFunction", "ValidationReport", "check_code",
    "check_reward_outputs", "child_environment", "compile_reward", "copy_inputs", "format_user_exception",
    "run_child", "sample_states", "sanitize_component_name", "tensor_stats", "validate_in_subprocess",
]
