"""The offline proposer (rewards.llm.search.offline): generated reward code runs on real states, is diverse,
deterministic, mutates by its documented rules, and its progress terms point the right way."""

import importlib.util
import math
import re

import pytest
import torch

import envs.minigrid as mg
from envs.minigrid import constants as C
from rewards.llm.context import describe_env
from rewards.llm.search.offline import OfflineProposer, Program, candidate_terms, parse_program, render_program

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
DOORKEY = "MiniGrid-DoorKey-8x8-v0"
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def _code(reply: str) -> str:
    blocks = FENCE.findall(reply)
    assert len(blocks) == 1, reply
    return blocks[0]


def _compile(code: str):
    scope = {"torch": torch, "math": math}
    exec(compile(code, "<reward>", "exec"), scope)
    return scope["compute_reward"]


def _snapshot(env) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in env.get_state().items()}


def _check_outputs(fn, state, action, next_state, n):
    reward, comps = fn(state, action, next_state)
    assert reward.dtype == torch.float32 and reward.shape == (n,)
    assert torch.isfinite(reward).all()
    assert isinstance(comps, dict) and comps
    for name, c in comps.items():
        assert c.dtype == torch.float32 and c.shape == (n,), name
    torch.testing.assert_close(torch.stack(list(comps.values())).sum(0), reward)
    return reward, comps


@pytest.fixture(scope="module")
def doorkey():
    env = mg.make(DOORKEY, num_envs=8, seed=0)
    ctx = describe_env(env, DOORKEY)
    gen = torch.Generator().manual_seed(0)
    transitions = []
    for _ in range(20):
        state = _snapshot(env)
        action = torch.randint(0, 7, (8,), generator=gen)
        env.step(action)
        transitions.append((state, action, _snapshot(env)))
    return env, ctx, transitions


def test_replies_hold_code_that_runs_on_doorkey_states(doorkey):
    env, ctx, transitions = doorkey
    replies = OfflineProposer(seed=0).propose(ctx, 8, rng_seed=0)
    assert len(replies) == 8
    for reply in replies:
        assert reply.index("Offline proposal") < reply.index("```python")
        code = _code(reply)
        prog = parse_program(code)
        assert prog is not None and "success" in prog.terms
        fn = _compile(code)
        for state, action, next_state in transitions:
            _, comps = _check_outputs(fn, state, action, next_state, 8)
            assert set(comps) == set(prog.terms)
        for state, _, _ in transitions:  # the inputs are left untouched
            assert state["grid"].dtype == torch.uint8


def test_candidates_are_diverse_and_cover_the_library(doorkey):
    _, ctx, _ = doorkey
    replies = OfflineProposer(seed=0).propose(ctx, 12, rng_seed=0)
    codes = [_code(r) for r in replies]
    assert len(set(codes)) == len(codes)
    progs = [parse_program(c) for c in codes]
    assert len({p.key() for p in progs}) == len(progs)
    used = set().union(*(p.terms for p in progs))
    assert used == set(candidate_terms(ctx))  # 12 candidates >= number of optional terms
    assert all(len(p.terms) <= 5 for p in progs)


def test_same_seed_same_code_other_seed_other_code(doorkey):
    _, ctx, _ = doorkey
    a = OfflineProposer(seed=3).propose(ctx, 4, rng_seed=7)
    assert a == OfflineProposer(seed=3).propose(ctx, 4, rng_seed=7)
    assert a != OfflineProposer(seed=3).propose(ctx, 4, rng_seed=8)
    assert a != OfflineProposer(seed=4).propose(ctx, 4, rng_seed=7)


def test_success_term_matches_the_env_success_flag():
    """The success event is judged from (state, action), so it agrees with info["success"] under auto-reset."""
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=32, seed=1)
    ctx = describe_env(env, "MiniGrid-Empty-5x5-v0")
    fn = _compile(render_program(ctx, Program({"success": 1.0}, {"metric": "l1", "gamma": 0.99})))
    gen = torch.Generator().manual_seed(1)
    successes = 0
    for _ in range(60):
        state = _snapshot(env)
        action = torch.randint(0, 3, (32,), generator=gen)
        _, _, _, _, info = env.step(action)
        _, comps = fn(state, action, _snapshot(env))
        assert torch.equal(comps["success"] > 0, info["success"])
        successes += int(info["success"].sum())
    assert successes > 0


def _place(env, offset_y: int, dirs: list[int]) -> None:
    """Put agent i at goal + (0, offset_y) facing dirs[i], checking the cells above the goal are free."""
    goal = env.state["goal_pos"]
    for i, d in enumerate(dirs):
        gx, gy = int(goal[i, 0]), int(goal[i, 1])
        for dy in (1, 2, 3):
            assert int(env.state["grid"][i, gy - dy, gx, 0]) == C.EMPTY
        env.state["agent_pos"][i] = torch.tensor([gx, gy + offset_y])
        env.state["agent_dir"][i] = d


def test_progress_term_prefers_moving_toward_the_goal():
    env = mg.make(DOORKEY, num_envs=2, seed=0)
    env.reset(seed=0)
    ctx = describe_env(env, DOORKEY)
    fn = _compile(render_program(ctx, Program({"success": 1.0, "goal_progress": 1.0, "step_penalty": 0.01},
                                              {"metric": "l1", "gamma": 0.99})))
    forward = torch.full((2,), C.FORWARD)

    # two cells above the goal: env 0 faces down (toward it), env 1 faces up (away)
    _place(env, -2, [1, 3])
    state = _snapshot(env)
    _, _, terminated, _, _ = env.step(forward)
    assert not terminated.any()
    reward, comps = fn(state, forward, _snapshot(env))
    assert comps["goal_progress"][0] > 0 > comps["goal_progress"][1]
    assert reward[0] > reward[1]

    # one cell above the goal: moving toward it ends the episode with success (next_state is already reset)
    env.reset(seed=0)
    _place(env, -1, [1, 3])
    state = _snapshot(env)
    _, _, terminated, _, info = env.step(forward)
    assert info["success"].tolist() == [True, False]
    reward, comps = fn(state, forward, _snapshot(env))
    assert comps["goal_progress"][0] == 0  # no shaping across the episode boundary
    assert comps["success"][0] == 1.0 and comps["success"][1] == 0.0
    assert reward[0] > reward[1]


def _reflection_for(ctx, prog: Program, stats: dict, fitness=0.5):
    pts = lambda m, lo, hi: [(i * 1000, m, lo, hi) for i in range(10)]  # noqa: E731
    return {"code": render_program(ctx, prog), "fitness": fitness, "error": None,
            "components": {k: pts(*v) for k, v in stats.items()}}


def test_mutation_shrinks_dominant_drops_dead_and_grows_vanishing_terms(doorkey):
    _, ctx, _ = doorkey
    parent = Program({"success": 1.0, "goal_dist": 0.5, "key_progress": 1.0, "step_penalty": 0.01,
                      "key_pickup": 0.3}, {"metric": "l1", "gamma": 0.99})
    stats = {"success": (0.001, 0.0, 1.0), "goal_dist": (-2.0, -3.0, -1.0), "key_progress": (0.01, -0.05, 0.05),
             "step_penalty": (-0.01, -0.01, -0.01), "key_pickup": (0.0, 0.0, 0.0)}
    refl = [_reflection_for(ctx, parent, stats),
            {"code": "def compute_reward(s, a, n):\n    boom", "fitness": 0.9, "error": "SyntaxError: boom"}]
    progs, notes = OfflineProposer(seed=0).propose_programs(ctx, 6, rng_seed=1, reflection=refl)
    assert "elite" in notes[0] and "goal_dist dominated" in notes[0]
    assert progs[0].terms == {"success": 1.0, "goal_dist": 0.05, "key_progress": 1.0, "step_penalty": 0.01}
    for prog in progs:  # every child descends from the one valid parent
        assert "key_pickup" not in prog.terms or prog.terms["key_pickup"] != 0.3
        if "goal_dist" in prog.terms:
            assert prog.terms["goal_dist"] <= 0.25
    assert len({p.key() for p in progs}) == 6 and parent.key() not in {p.key() for p in progs}

    # a negligible (but active) term grows at least twofold
    stats["step_penalty"] = (-1e-5, -1e-5, -1e-5)
    stats["goal_dist"] = (-0.02, -0.03, -0.01)
    progs, _ = OfflineProposer(seed=0).propose_programs(ctx, 6, rng_seed=2, reflection=[_reflection_for(ctx, parent, stats)])
    grown = [p.terms["step_penalty"] for p in progs if "step_penalty" in p.terms]
    assert grown and all(w >= 0.02 for w in grown)


def test_mutated_code_runs_and_reflection_without_parents_samples_afresh(doorkey):
    _, ctx, transitions = doorkey
    parent = Program({"success": 1.0, "subgoal_progress": 1.0}, {"metric": "l2", "gamma": 0.99})
    refl = [_reflection_for(ctx, parent, {"success": (0.0, 0.0, 0.0), "subgoal_progress": (0.01, -0.1, 0.1)},
                            fitness=0.0)]
    proposer = OfflineProposer(seed=0)
    replies = proposer.propose(ctx, 4, rng_seed=5, reflection=refl)
    _, notes = proposer.propose_programs(ctx, 4, rng_seed=5, reflection=refl)
    assert ["fresh" in n for n in notes] == [False, False, True, True]  # no success yet: half explore
    for reply in replies:
        state, action, next_state = transitions[0]
        _check_outputs(_compile(_code(reply)), state, action, next_state, 8)
    only_errors = [{"code": "x = 1", "fitness": 1.0, "error": "NameError"}]
    _, notes = proposer.propose_programs(ctx, 3, rng_seed=5, reflection=only_errors)
    assert all("fresh" in n for n in notes)


def test_config_knobs_and_unknown_terms(doorkey):
    _, ctx, _ = doorkey
    proposer = OfflineProposer.from_config({"name": "offline", "seed": 1, "max_terms": 2, "weight_scale": 1.0})
    progs, _ = proposer.propose_programs(ctx, 5, rng_seed=0)
    assert all(len(p.terms) == 2 for p in progs)
    for p in progs:  # weight_scale 1: every weight is its base weight
        for name, w in p.terms.items():
            assert w == candidate_terms(ctx)[name].base_weight
    with pytest.raises(ValueError, match="forward_velocity"):
        render_program(ctx, Program({"forward_velocity": 1.0}))
    assert parse_program("def compute_reward(s, a, n): pass") is None


@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco is not installed")
@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
def test_mujoco_candidates_run_on_real_states(env_id):
    from rlcore.adapters.gymnasium import make_gym_env

    env = make_gym_env(env_id, num_envs=3, seed=0)
    try:
        ctx = describe_env(env, env_id)
        gen = torch.Generator().manual_seed(0)
        state = _snapshot(env)
        dim = env.single_action_space.shape[0]
        action = torch.rand(3, dim, generator=gen) * 2 - 1
        env.step(action)
        next_state = _snapshot(env)
    finally:
        env.close()
    replies = OfflineProposer(seed=0).propose(ctx, 6, rng_seed=0)
    codes = [_code(r) for r in replies]
    assert len(set(codes)) == 6
    for code in codes:
        prog = parse_program(code)
        assert "forward_velocity" in prog.terms
        _, comps = _check_outputs(_compile(code), state, action, next_state, 3)
        w = prog.terms["forward_velocity"]
        torch.testing.assert_close(comps["forward_velocity"], w * next_state["qvel"][:, 0])
        if "ctrl_cost" in comps:
            torch.testing.assert_close(comps["ctrl_cost"], -prog.terms["ctrl_cost"] * (action ** 2).sum(-1))
    assert ("alive" in candidate_terms(ctx)) == (env_id == "Hopper-v5")


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_key_potential_is_the_distance_to_the_key(doorkey, metric):
    env, ctx, transitions = doorkey
    scope = {"torch": torch, "math": math}
    exec(compile(render_program(ctx, Program({"success": 1.0, "key_progress": 1.0}, {"metric": metric, "gamma": 0.9})),
                 "<reward>", "exec"), scope)
    state = transitions[0][0]
    phi = scope["_phi_key"](state)
    w, h = ctx.facts["grid_size"]
    for i in range(env.num_envs):
        ys, xs = torch.nonzero(state["grid"][i, :, :, 0] == C.KEY, as_tuple=True)
        ax, ay = state["agent_pos"][i].tolist()
        dists = [abs(x - ax) + abs(y - ay) if metric == "l1" else math.hypot(x - ax, y - ay)
                 for x, y in zip(xs.tolist(), ys.tolist())]
        needed = dists and int(state["carrying"][i, 0]) != C.KEY and int(state["door_state"][i]) != C.OPEN
        expected = -min(dists) / (w + h) if needed else 0.0
        assert float(phi[i]) == pytest.approx(expected, abs=1e-6)
