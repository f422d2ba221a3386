"""The sandbox for LLM-written reward code: AST policy, restricted builtins, the limited validation
subprocess and the output checks of compiled reward functions.

Subprocess tests each start a Python process that imports torch (~1.5 s); they are kept to a handful.
"""

from __future__ import annotations

import pytest
import torch

import envs.minigrid as mg
from rewards.llm.sandbox import (
    RewardCodeError,
    RewardFunction,
    check_code,
    child_environment,
    compile_reward,
    sample_states,
    validate_in_subprocess,
)

N = 8

GOOD_CODE = '''
"""Distance-to-goal shaping plus a success bonus."""
import torch
import math
import torch.nn.functional as F

SUCCESS_BONUS = 1.0
SCALE = 1 / 10

def manhattan(a, b):
    return (a - b).abs().sum(-1).float()

def compute_reward(state: dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    dist = manhattan(next_state["agent_pos"], next_state["goal_pos"])
    success = (dist == 0).float()
    progress = manhattan(state["agent_pos"], state["goal_pos"]) - dist
    smooth = F.softplus(progress) * SCALE + math.pi * 0.0 + torch.finfo(torch.float32).eps * 0
    reward = -SCALE * dist + SUCCESS_BONUS * success + 0.0 * smooth
    return reward, {"dist": dist, "success": success, "progress": progress}
'''


def _wrap(body: str, ret: str = "torch.zeros(action.shape[0]), {}") -> str:
    """Reward code with ``body`` (one or more lines) inside compute_reward."""
    inner = "\n".join("    " + line for line in body.splitlines())
    return f"def compute_reward(state, action, next_state):\n{inner}\n    return {ret}\n"


@pytest.fixture(scope="module")
def env():
    return mg.make("MiniGrid-Empty-5x5-v0", num_envs=N, seed=0)


@pytest.fixture(scope="module")
def sample(env):
    return sample_states(env, num_steps=4, seed=0)


# ------------------------------------------------------------------------------------ AST policy
HOSTILE = {
    "import os": ("import os", "'os'"),
    "from subprocess": ("from subprocess import run", "'subprocess'"),
    "__import__": ("x = __import__('os')", "'__import__'"),
    "subclasses": ("x = ().__class__.__bases__[0].__subclasses__()", "'__class__'"),
    "torch.os": ("torch.os.system('x')", "'os'"),
    "torch.save": ("torch.save(state, 'f')", "'save'"),
    "torch.load": ("x = torch.load('f')", "'load'"),
    "getattr": ("f = getattr(torch, 'sa' + 've')", "'getattr'"),
    "open": ("x = open('/etc/passwd').read()", "'open'"),
    "eval": ("x = eval('1')", "'eval'"),
    "exec": ("exec('x = 1')", "'exec'"),
    "globals": ("g = globals()", "'globals'"),
    "state.__class__": ("c = state.__class__", "'__class__'"),
    "torch._C": ("c = torch._C", "'_C'"),
    "str.format": ("s = '{0.__class__}'.format(action)", "'format'"),
    "torch.utils": ("u = torch.utils", "'utils'"),
    "torch.hub": ("torch.hub.load('a', 'b')", "'hub'"),
    "torch.set_num_threads": ("torch.set_num_threads(64)", "'set_num_threads'"),
    "torch.manual_seed": ("torch.manual_seed(0)", "'manual_seed'"),
    "torch.cond": ("y = torch.cond(action.sum() > 0, lambda x: x, lambda x: -x, (action,))", "'cond'"),
    "untyped_storage": ("s = action.untyped_storage()", "'untyped_storage'"),
    "numpy": ("a = action.numpy()", "'numpy'"),
    "module as value": ("t = torch", "module 'torch'"),
    "module passed": ("x = len(math)", "module 'math'"),
    "rebind torch": ("torch = 3", "'torch'"),
    "unsafe module": ("d = torch.distributions.Normal(0, 1)", "torch.distributions"),
    "unsafe class": ("w = torch.PyTorchFileWriter('f')", "PyTorchFileWriter"),
    "attribute store": ("action.data = action", "assigning"),
    "in-place method": ("state['agent_pos'].add_(1)", "add_"),
    "frame walk": ("g = (x for x in [1]).gi_frame", "gi_frame"),
    "type": ("t = type(action)", "'type'"),
    "global": ("global X", "'global'"),
    "try": ("try:\n    x = 1\nexcept Exception:\n    x = 2", "try"),
    "with": ("with torch.enable_grad():\n    x = 1", "'with'"),  # with torch.no_grad(): is accepted (inert)
    "class": ("class A:\n    pass", "class"),
    "nested import": ("import math", "top level"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_code_is_refused_with_a_named_reason(name):
    body, expected = HOSTILE[name]
    with pytest.raises(RewardCodeError) as info:
        check_code(_wrap(body))
    reason = info.value.reason
    assert expected in reason, reason
    assert "line 2" in reason, reason  # the body starts on line 2 of the wrapped code


def test_harmless_constructs_pass_the_policy():
    check_code(GOOD_CODE)
    check_code(_wrap("f = lambda x: x * 2\ny = sum(v for v in [1, 2])\ns = f'{len(state)}'\n"
                     "n = 0\nwhile n < 3:\n    n += 1\nt = action.float().trace() if action.dim() == 2 else 0\n"
                     "r = torch.where(action > 0, 1.0, 0.0).float()\nassert r.shape[0] == action.shape[0]",
                     ret="r, {}"))
    check_code("import torch as th\nfrom math import sqrt\n" + _wrap("x = th.ones(3) * sqrt(2.0)"))


@pytest.mark.parametrize("code, expected", [
    ("def compute_reward(state, action):\n    return 0\n", "exactly the positional parameters"),
    ("def reward(state, action, next_state):\n    return 0\n", "no top-level function"),
    (_wrap("x = 1") + _wrap("x = 2"), "defined 2 times"),
    ("x = torch.zeros(3)\n" + _wrap("y = 1"), "constants"),
    ("print('hi')\n" + _wrap("y = 1"), "top-level 'Expr'"),
    ("@torch.no_grad\n" + _wrap("y = 1"), "decorators"),
])
def test_structure_is_enforced(code, expected):
    with pytest.raises(RewardCodeError, match=expected):
        check_code(code)


def test_syntax_error_reports_line_and_size_bound():
    with pytest.raises(RewardCodeError) as info:
        check_code("def compute_reward(state, action, next_state):\n    x = (1 +\n    return x\n\n\n")
    assert "syntax error at line" in info.value.reason
    with pytest.raises(RewardCodeError, match="syntax error at line 3"):
        check_code("import torch\n\ndef compute_reward(state, action, next_state) return 1\n")
    with pytest.raises(RewardCodeError, match="characters long; the limit is 100"):
        check_code(GOOD_CODE, max_chars=100)


def test_all_violations_are_listed_at_once():
    with pytest.raises(RewardCodeError) as info:
        check_code("import os\n" + _wrap("x = eval('1')\ny = state.__dict__"))
    reason = info.value.reason
    assert "line 1:" in reason and "line 3:" in reason and "line 4:" in reason


# ------------------------------------------------------------------------------------ in-process calls
def test_restricted_builtins_at_runtime(sample):
    # names not on the allow-list are simply absent (NameError), imports go through the guarded hook
    fn = RewardFunction(_wrap("x = sorted([3, 1])\ny = memoryview_like", ret="torch.zeros(action.shape[0]), {}"))
    with pytest.raises(RewardCodeError, match="NameError: name 'memoryview_like' is not defined"):
        fn(sample["state"], sample["action"], sample["next_state"])
    quiet = RewardFunction(_wrap("print('noise')"))
    reward, comps = quiet(sample["state"], sample["action"], sample["next_state"])
    assert reward.shape == (N,) and comps == {}


@pytest.mark.parametrize("ret, expected", [
    ("torch.zeros(action.shape[0], 1), {}", r"reward has shape \[8, 1\]; expected \[8\]"),
    ("torch.tensor(0.0), {}", r"reward has shape \[\] \(a scalar\)"),
    ("torch.zeros(action.shape[0], dtype=torch.int64), {}", "reward has dtype torch.int64"),
    ("torch.zeros(action.shape[0])", "must return a tuple"),
    ("torch.zeros(action.shape[0]), [1]", "components .* must be a dict"),
    ("torch.zeros(action.shape[0]), {'dist': torch.full((action.shape[0],), float('nan'))}",
     "component 'dist' has non-finite values: 8 NaN"),
    ("torch.full((action.shape[0],), float('inf')), {}", "reward has non-finite values: 0 NaN and 8 inf"),
    ("torch.zeros(action.shape[0]), {'dist': 1.0}", "component 'dist' must be a torch.Tensor"),
    ("torch.zeros(action.shape[0]), {'d': torch.zeros(3)}", r"component 'd' has shape \[3\]"),
])
def test_bad_outputs_are_refused_with_named_reasons(sample, ret, expected):
    fn = RewardFunction(_wrap("pass", ret=ret))
    with pytest.raises(RewardCodeError, match=expected):
        fn(sample["state"], sample["action"], sample["next_state"])


def test_finiteness_check_can_be_switched_off(sample):
    fn = RewardFunction(_wrap("pass", ret="torch.full((action.shape[0],), float('nan')), {}"), check_outputs=False)
    reward, _ = fn(sample["state"], sample["action"], sample["next_state"])
    assert reward.isnan().all()


def test_runtime_exception_carries_the_user_line(sample):
    code = _wrap("a = 1\nb = helper(a)", ret="b, {}")
    code = "def helper(x):\n    return x / 0\n\n" + code
    fn = RewardFunction(code)
    with pytest.raises(RewardCodeError) as info:
        fn(sample["state"], sample["action"], sample["next_state"])
    reason = info.value.reason
    assert "line 6, in compute_reward" in reason and "b = helper(a)" in reason
    assert "line 2, in helper" in reason and "ZeroDivisionError" in reason
    assert "sandbox.py" not in reason  # frames of the sandbox itself are filtered out


def test_sample_states_shapes_and_determinism(env):
    a = sample_states(env, num_steps=4, seed=3)
    b = sample_states(env, num_steps=4, seed=3)
    assert a["action"].shape == (N,) and a["action"].dtype == torch.int64
    assert a["state"]["agent_pos"].shape == (N, 2) and a["next_state"]["goal_pos"].shape == (N, 2)
    for key in ("state", "next_state"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), (key, name)
    # clones, not views of the live env state
    env.step(torch.zeros(N, dtype=torch.int64))
    assert a["next_state"]["agent_pos"].data_ptr() != env.get_state()["agent_pos"].data_ptr()


def test_child_environment_drops_secrets():
    parent = {"PATH": "/usr/bin", "OPENAI_API_KEY": "x", "HF_TOKEN": "y", "DB_PASSWORD": "z", "my_secret": "s",
              "AWS_SECRET_ACCESS_KEY": "k", "INNOCENT": "sk-abcdef", "HOME": "/home/u"}
    env = child_environment(parent)
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u"
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "DB_PASSWORD", "my_secret", "AWS_SECRET_ACCESS_KEY", "INNOCENT"):
        assert name not in env
    assert env["OMP_NUM_THREADS"] == "1"


# ------------------------------------------------------------------------------------ subprocess
def test_valid_minigrid_reward_compiles_and_runs(env):
    fn = compile_reward(GOOD_CODE, env, timeout_s=60)
    assert fn.validation is not None and fn.validation.ok, fn.validation
    assert fn.component_names == ("dist", "success", "progress")
    assert fn.validation.reward_min <= fn.validation.reward_mean <= fn.validation.reward_max
    s = sample_states(env, num_steps=4, seed=1)
    reward, comps = fn(s["state"], s["action"], s["next_state"])
    assert reward.shape == (N,) and reward.dtype == torch.float32
    dist = (s["next_state"]["agent_pos"] - s["next_state"]["goal_pos"]).abs().sum(-1).float()
    torch.testing.assert_close(comps["dist"], dist)
    torch.testing.assert_close(reward, -0.1 * dist + (dist == 0).float())


def test_endless_loop_hits_the_cpu_limit(sample):
    report = validate_in_subprocess(_wrap("while True:\n    pass"), sample, timeout_s=60, cpu_seconds=1)
    assert not report.ok
    assert "CPU time limit exceeded" in report.error and "line 2" in report.error, report.error


@pytest.mark.parametrize("bomb", ["x = [0] * 10**10", "x = torch.ones(2**28)"])
def test_memory_bomb_hits_the_memory_limit(sample, bomb):
    report = validate_in_subprocess(_wrap(bomb), sample, timeout_s=60, memory_mb=256)
    assert not report.ok
    assert "memory limit exceeded" in report.error and "line 2" in report.error, report.error


def test_subprocess_reports_exceptions_bad_outputs_and_input_mutation(sample):
    report = validate_in_subprocess(_wrap("a = 1\nb = state['missing']"), sample, timeout_s=60)
    assert not report.ok and "line 3, in compute_reward" in report.error and "KeyError: 'missing'" in report.error
    report = validate_in_subprocess(_wrap("pass", ret="torch.zeros(action.shape[0]), {'d': torch.zeros(action.shape[0]) / 0}"),
                                    sample, timeout_s=60)
    assert not report.ok and "component 'd' has non-finite values" in report.error, report.error
    report = validate_in_subprocess(_wrap("p = state['agent_pos']\np += 1"), sample, timeout_s=60)
    assert not report.ok and "modified its input state['agent_pos']" in report.error, report.error


def test_refusals_never_start_a_process_and_can_raise(sample):
    report = validate_in_subprocess("import os\n" + _wrap("pass"), sample)
    assert not report.ok and "'os'" in report.error and report.wall_time_s < 5
    with pytest.raises(RewardCodeError, match="syntax error at line 1"):
        validate_in_subprocess("def compute_reward(:\n", sample, raise_on_error=True)
    with pytest.raises(RewardCodeError, match="not allowed"):
        compile_reward(_wrap("x = eval('1')"), None, validate=False)


@pytest.mark.parametrize("constant", ["X = 9**9**9", "X = ((9**64)**64)**64", "X = [0] * 10**10", "X = 'a' * 10**9",
                                      "X = 1 << 10**9", "X = (1, 2) * 3"])
def test_top_level_constants_that_could_blow_up_on_load_are_refused(constant):
    code = constant + "\n\ndef compute_reward(state, action, next_state):\n    r = action.float() * 0\n    return r, {'r': r}\n"
    with pytest.raises(RewardCodeError, match="line 1"):
        check_code(code)


@pytest.mark.parametrize("constant", ["X = 2**10", "X = 0.5 * math.pi", "X = -3 ** 2", "X = (1.0 + 2.0) / 3"])
def test_ordinary_top_level_constants_are_allowed(constant):
    check_code(constant + "\n\ndef compute_reward(state, action, next_state):\n"
               "    r = action.float() * X\n    return r, {'r': r}\n")
