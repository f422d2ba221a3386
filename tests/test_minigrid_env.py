"""Contract tests for the batched MiniGrid: spaces, dtypes, auto-reset, seeding, layout marginals."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import minigrid  # noqa: F401
import numpy as np
import pytest
import torch

import envs.minigrid as mg
from envs.minigrid import constants as C
from rlcore.env import BatchedEnv


def _step_random(env, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        a = torch.randint(0, 7, (env.num_envs,), generator=g).to(env.device)
        yield env.step(a)


@pytest.mark.parametrize("env_id", mg.SUPPORTED_IDS)
def test_spaces_dtypes_and_reset(env_id):
    env = mg.make(env_id, num_envs=5, seed=0)
    assert isinstance(env, BatchedEnv)
    obs, info = env.reset(seed=1)
    assert set(obs) == {"image", "direction", "mission"}
    assert obs["image"].dtype == torch.uint8 and obs["image"].shape == (5, 7, 7, 3)
    assert obs["direction"].dtype == torch.int64 and obs["direction"].shape == (5,)
    assert obs["mission"].dtype == torch.int64
    for i in range(5):
        one = {k: v[i].numpy() for k, v in obs.items()}
        one["direction"] = int(one["direction"])
        one["mission"] = int(one["mission"])
        assert env.single_observation_space.contains(one)
    assert env.single_action_space == gym.make(env_id).unwrapped.action_space
    st = env.get_state()
    assert st["grid"].shape == (5, env.height, env.width, 3) and st["grid"].dtype == torch.uint8
    assert st["agent_pos"].dtype == torch.int64 and st["agent_pos"].shape == (5, 2)
    assert st["carrying"].dtype == torch.uint8 and st["step_count"].dtype == torch.int64
    obs, rew, term, trunc, info = env.step(torch.zeros(5, dtype=torch.int64))
    assert rew.dtype == torch.float32 and term.dtype == torch.bool and trunc.dtype == torch.bool
    assert info["success"].dtype == torch.bool
    assert env.max_steps == gym.make(env_id).unwrapped.max_steps
    # the agent stands on a free cell
    g = st["grid"]
    ap = st["agent_pos"]
    under = g[torch.arange(5), ap[:, 1], ap[:, 0], 0]
    assert bool(((under == C.EMPTY) | (under == C.GOAL)).all())


def test_unknown_id_lists_supported():
    with pytest.raises(ValueError, match="MiniGrid-DoorKey-8x8-v0"):
        mg.make("MiniGrid-Nope-v0", num_envs=2)


def test_bad_actions():
    env = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=3, seed=0)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError):
        env.step(torch.zeros(3, dtype=torch.float32))
    with pytest.raises(TypeError):
        env.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="range|lie in"):
        env.step(torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError):
        env.step(torch.tensor([0, -1, 1]))
    # int32 actions are accepted
    env.step(torch.zeros(3, dtype=torch.int32))


def test_seeding_reproducible():
    a = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=64)
    b = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=64)
    oa, _ = a.reset(seed=123)
    ob, _ = b.reset(seed=123)
    assert torch.equal(a.grid, b.grid) and torch.equal(a.agent_pos, b.agent_pos)
    assert torch.equal(oa["image"], ob["image"])
    for (o1, r1, t1, _u1, _), (o2, r2, t2, _u2, _) in zip(_step_random(a, 50), _step_random(b, 50)):
        assert torch.equal(o1["image"], o2["image"]) and torch.equal(r1, r2) and torch.equal(t1, t2)
    oc, _ = a.reset(seed=124)
    assert not torch.equal(oc["image"], ob["image"]) or not torch.equal(a.grid, b.grid)
    # constructor seed works too
    c = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=64, seed=5)
    d = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=64, seed=5)
    assert torch.equal(c.grid, d.grid)


def test_autoreset_and_final_obs():
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0)
    env.reset(seed=0)
    # agent at (1,1) facing right; goal at (3,3): right(0)->down... use: fwd, fwd, right, fwd, fwd
    seq = [C.FORWARD, C.FORWARD, C.RIGHT, C.FORWARD]
    for a in seq:
        obs, rew, term, trunc, info = env.step(torch.full((4,), a))
        assert not term.any()
    obs, rew, term, trunc, info = env.step(torch.tensor([C.FORWARD, C.LEFT, C.FORWARD, C.DONE]))
    assert term.tolist() == [True, False, True, False]
    assert info["success"].tolist() == [True, False, True, False]
    expected = 1 - 0.9 * 5 / env.max_steps
    assert rew[0].item() == pytest.approx(expected, abs=1e-6) and rew[1].item() == 0
    # finished rows were reset: agent back at start, step count 0; final obs shows the goal reached
    assert env.agent_pos[0].tolist() == [1, 1] and env.step_count[0].item() == 0
    assert env.step_count[1].item() == 5
    assert not torch.equal(info["final_obs"]["image"][0], obs["image"][0])
    assert torch.equal(info["final_obs"]["image"][1], obs["image"][1])
    assert info["final_obs"]["direction"][0].item() == 1 and obs["direction"][0].item() == 0


def test_truncation_at_max_steps():
    env = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=3, seed=0)
    env.reset(seed=0)
    for t in range(env.max_steps):
        obs, rew, term, trunc, info = env.step(torch.full((3,), C.DONE))
        if t < env.max_steps - 1:
            assert not trunc.any()
    assert trunc.all() and not term.any()
    assert (env.step_count == 0).all()


def _positions(grid: torch.Tensor, cell) -> list[tuple[int, int]]:
    m = (grid == torch.tensor(cell, dtype=torch.uint8)).all(-1)
    n = m.shape[0]
    idx = m.view(n, -1).float().argmax(1)
    W = grid.shape[2]
    return list(zip((idx % W).tolist(), (idx // W).tolist()))


def _tv(c1: Counter, c2: Counter) -> float:
    n1, n2 = sum(c1.values()), sum(c2.values())
    keys = set(c1) | set(c2)
    return 0.5 * sum(abs(c1[k] / n1 - c2[k] / n2) for k in keys)


@pytest.mark.parametrize("env_id,n_farama", [("MiniGrid-DoorKey-8x8-v0", 1500), ("MiniGrid-Empty-Random-6x6-v0", 800)])
def test_layout_marginals_match_farama(env_id, n_farama):
    """Key, door, goal and agent position histograms vs Farama (total-variation distance)."""
    n = 20000
    env = mg.make(env_id, num_envs=n, seed=0)
    env.reset(seed=0)
    ours = {
        "key": Counter(_positions(env.grid, (C.KEY, C.YELLOW, 0))),
        "door": Counter(_positions(env.grid, (C.DOOR, C.YELLOW, C.LOCKED))),
        "goal": Counter(_positions(env.grid, C.GOAL_CELL)),
        "agent": Counter(map(tuple, env.agent_pos.tolist())),
        "dir": Counter(env.agent_dir.tolist()),
    }
    fenv = gym.make(env_id).unwrapped
    theirs = {k: Counter() for k in ours}
    for s in range(n_farama):
        fenv.reset(seed=10_000 + s)
        for x in range(fenv.width):
            for y in range(fenv.height):
                o = fenv.grid.get(x, y)
                if o is not None and o.type in ("key", "door", "goal"):
                    theirs[o.type][(x, y)] += 1
        theirs["agent"][tuple(int(v) for v in fenv.agent_pos)] += 1
        theirs["dir"][int(fenv.agent_dir)] += 1
    for k in ours:
        if not theirs[k]:
            assert not ours[k] or sum(ours[k].values()) == 0 or k in ("key", "door"), k
            continue
        support = len(theirs[k])
        # expected TV of an n-sample histogram over `support` bins is about sqrt(support / n) / 2
        tol = 1.2 * np.sqrt(support / n_farama) + 0.02
        assert set(ours[k]) <= set(theirs[k]) | set(ours[k]) and _tv(ours[k], theirs[k]) < tol, (k, _tv(ours[k], theirs[k]), tol)
        # no position Farama can never produce
        assert all(theirs[k][p] > 0 for p in ours[k] if ours[k][p] > n * 0.01), k


def test_load_rejects_other_tasks():
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=2)
    f = gym.make("MiniGrid-DoorKey-6x6-v0").unwrapped
    f.reset(seed=0)
    with pytest.raises(ValueError, match="cannot load"):
        env.load_minigrid([f])
    f2 = gym.make("MiniGrid-LockedRoom-v0").unwrapped
    f2.reset(seed=0)
    with pytest.raises(ValueError, match="cannot load"):
        env.load_minigrid([f2])


def test_render_rgb_matches_farama():
    f = gym.make("MiniGrid-DoorKey-8x8-v0").unwrapped
    f.reset(seed=7)
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=3)
    env.load_minigrid([f], [1])
    img = env.render_rgb(1, tile_size=8)
    ref = f.get_frame(highlight=True, tile_size=8)
    assert img.shape == ref.shape and np.array_equal(img, ref)


def test_memory_per_env_small():
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=4)
    assert env.state_nbytes_per_env() < 8 * 8 * 3 + 128


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_step_is_sync_free():
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=256, device="cuda", seed=0)
    env.reset(seed=0)
    a = torch.randint(0, 7, (256,), device="cuda")
    env.step(a)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            obs, rew, term, trunc, info = env.step(a)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert obs["image"].device.type == "cuda"
    # same layouts on CUDA and CPU are not required, but dynamics must agree: load CPU state into CUDA env
    cpu = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=256, seed=1)
    cpu.reset(seed=1)
    for k in cpu.state:
        env.state[k] = cpu.state[k].to("cuda").clone()
    alive = torch.ones(256, dtype=torch.bool)  # rows not yet auto-reset (layouts differ after a reset)
    for (_o1, r1, t1, u1, i1), (_o2, r2, t2, _u2, i2) in zip(_step_random(cpu, 30, 3), _step_random(env, 30, 3)):
        assert torch.equal(r1[alive], r2.cpu()[alive]) and torch.equal(t1[alive], t2.cpu()[alive])
        assert torch.equal(i1["final_obs"]["image"][alive], i2["final_obs"]["image"].cpu()[alive])
        alive &= ~(t1 | u1)


@pytest.mark.parametrize("env_id", ["MiniGrid-FourRooms-v0", "MiniGrid-LavaGapS7-v0", "MiniGrid-LavaCrossingS9N2-v0",
                                    "MiniGrid-SimpleCrossingS11N5-v0", "MiniGrid-DoorKey-16x16-v0",
                                    "MiniGrid-Unlock-v0", "MiniGrid-UnlockPickup-v0", "MiniGrid-BlockedUnlockPickup-v0",
                                    "MiniGrid-KeyCorridorS3R3-v0", "MiniGrid-KeyCorridorS6R3-v0",
                                    "MiniGrid-ObstructedMaze-1Dlhb-v0", "MiniGrid-ObstructedMaze-2Q-v0",
                                    "MiniGrid-Dynamic-Obstacles-Random-6x6-v0", "MiniGrid-Dynamic-Obstacles-8x8-v0"])
def test_cell_occupancy_matches_farama(env_id):
    """Per-cell frequency of each object type, and the agent's cell and direction, vs Farama."""
    m = 300
    env = mg.make(env_id, num_envs=6000, seed=0)
    env.reset(seed=0)
    types = env.grid[..., 0].long()
    ours = torch.stack([(types == t).float().mean(0) for t in range(11)])  # [11,H,W]
    agent = torch.zeros(env.height, env.width)
    agent.index_put_((env.agent_pos[:, 1], env.agent_pos[:, 0]), torch.ones(env.num_envs), accumulate=True)
    agent /= env.num_envs
    theirs = torch.zeros_like(ours)
    fagent = torch.zeros_like(agent)
    fenv = gym.make(env_id).unwrapped
    for s in range(m):
        fenv.reset(seed=50_000 + s)
        enc = torch.as_tensor(fenv.grid.encode()[..., 0]).long().T  # [H,W]
        theirs += torch.nn.functional.one_hot(enc, 11).permute(2, 0, 1).float() / m
        fagent[int(fenv.agent_pos[1]), int(fenv.agent_pos[0])] += 1 / m
    tol = 4.5 * torch.sqrt(theirs * (1 - theirs) / m + 1e-4) + 0.01
    bad = (ours - theirs).abs() > tol
    assert not bad.any(), f"cells differ: {bad.nonzero().tolist()[:10]}"
    atol = 4.5 * torch.sqrt(fagent * (1 - fagent) / m + 1e-4) + 0.01
    assert not ((agent - fagent).abs() > atol).any()


@pytest.mark.parametrize("env_id", ["MiniGrid-BlockedUnlockPickup-v0", "MiniGrid-UnlockPickup-v0",
                                    pytest.param("MiniGrid-ObstructedMaze-2Dlhb-v0", marks=pytest.mark.slow)])
def test_roomgrid_agent_pos_dir_and_colors_match_farama(env_id):
    """Joint (cell, direction) of the agent (RoomGrid redraws when facing an object), and colours."""
    m = 1200
    env = mg.make(env_id, num_envs=20000, seed=0)
    env.reset(seed=0)
    ours = Counter(zip(map(tuple, env.agent_pos.tolist()), env.agent_dir.tolist()))
    ours_m = Counter(env.state["mission"].tolist())
    fenv = gym.make(env_id).unwrapped
    theirs, theirs_m = Counter(), Counter()
    for s in range(m):
        fenv.reset(seed=70_000 + s)
        theirs[(tuple(int(v) for v in fenv.agent_pos), int(fenv.agent_dir))] += 1
        theirs_m[env.missions.index(fenv.mission)] += 1
    assert set(ours) >= set(theirs)
    assert all(p in theirs or ours[p] < 0.002 * env.num_envs for p in ours)
    assert _tv(ours, theirs) < 1.2 * np.sqrt(len(theirs) / m) / 2 + 0.03
    assert _tv(ours_m, theirs_m) < 0.08


def _door_summary(grid: torch.Tensor) -> list[tuple[int, int]]:
    """Per env: (number of closed doors, number of locked doors)."""
    t, st = grid[..., 0], grid[..., 2]
    closed = ((t == C.DOOR) & (st == C.CLOSED)).flatten(1).sum(1)
    locked = ((t == C.DOOR) & (st == C.LOCKED)).flatten(1).sum(1)
    return list(zip(closed.tolist(), locked.tolist()))


@pytest.mark.parametrize("env_id", ["MiniGrid-KeyCorridorS3R3-v0", "MiniGrid-KeyCorridorS3R2-v0",
                                    pytest.param("MiniGrid-KeyCorridorS5R3-v0", marks=pytest.mark.slow)])
def test_keycorridor_doors_and_missions_match_farama(env_id):
    """connect_all's number of added doors, the mission colour and the agent's (cell, direction) vs Farama."""
    m = 800
    env = mg.make(env_id, num_envs=20000, seed=0)
    env.reset(seed=0)
    ours_doors = Counter(_door_summary(env.grid))
    ours_m = Counter(env.state["mission"].tolist())
    ours_a = Counter(zip(map(tuple, env.agent_pos.tolist()), env.agent_dir.tolist()))
    fenv = gym.make(env_id).unwrapped
    theirs_doors, theirs_m, theirs_a = Counter(), Counter(), Counter()
    for s in range(m):
        fenv.reset(seed=90_000 + s)
        g = torch.as_tensor(fenv.grid.encode()).permute(1, 0, 2).unsqueeze(0)
        theirs_doors[_door_summary(g)[0]] += 1
        theirs_m[env.missions.index(fenv.mission)] += 1
        theirs_a[(tuple(int(v) for v in fenv.agent_pos), int(fenv.agent_dir))] += 1
    assert {k[1] for k in ours_doors} == {1}
    assert _tv(ours_doors, theirs_doors) < 1.2 * np.sqrt(len(theirs_doors) / m) / 2 + 0.03
    assert _tv(ours_m, theirs_m) < 0.08
    assert _tv(ours_a, theirs_a) < 1.2 * np.sqrt(len(theirs_a) / m) / 2 + 0.03
    # the ball is the target and the locked door's key has its colour
    st = env.get_state()
    assert bool((st["target"][:, 0] == C.BALL).all()) and bool((st["door_state"] == C.LOCKED).all())
    key_col = torch.where(env.grid[..., 0] == C.KEY, env.grid[..., 1].long(), -1).flatten(1).amax(1)
    dcol = env.grid[torch.arange(env.num_envs), st["door_pos"][:, 1], st["door_pos"][:, 0], 1].long()
    assert torch.equal(key_col, dcol)


def _multiroom_summary(grid: torch.Tensor, agent_pos: torch.Tensor) -> dict[str, list]:
    t = grid[..., 0]
    n, H, W = t.shape
    goal = (t == C.GOAL).flatten(1).float().argmax(1)
    walls = (t == C.WALL).flatten(1).sum(1)
    wall_x = (t == C.WALL).any(1).float()  # columns touched by walls
    xs = torch.arange(W).float()
    return {
        "agent_x": agent_pos[:, 0].tolist(), "agent_y": agent_pos[:, 1].tolist(),
        "goal_x": (goal % W).tolist(), "goal_y": (goal // W).tolist(),
        "walls": (walls // 8).tolist(),
        "min_wall_x": torch.where(wall_x > 0, xs, 99.0).amin(1).long().tolist(),
        "doors": (t == C.DOOR).flatten(1).sum(1).tolist(),
    }


@pytest.mark.parametrize("env_id,m,fixed_rounds", [("MiniGrid-MultiRoom-N6-v0", 1000, False),
                                                   pytest.param("MiniGrid-MultiRoom-N6-v0", 1000, True, marks=pytest.mark.slow),
                                                   ("MiniGrid-MultiRoom-N4-S5-v1", 600, False)])
def test_multiroom_layouts_match_farama(env_id, m, fixed_rounds, monkeypatch):
    """Marginals of agent and goal coordinates, wall-cell count and leftmost wall column vs Farama
    (conditioning on a successful placement attempt shapes all of them). ``fixed_rounds``: the
    sync-free generation path used on accelerators."""
    from envs.minigrid import tasks_more

    monkeypatch.setattr(tasks_more, "MULTIROOM_FIXED_ROUNDS_ON_CPU", fixed_rounds)
    n = 8000 if not fixed_rounds else 3000
    env = mg.make(env_id, num_envs=n, seed=0)
    env.reset(seed=0)
    ours = {k: Counter(v) for k, v in _multiroom_summary(env.grid, env.agent_pos).items()}
    fenv = gym.make(env_id).unwrapped
    theirs = {k: Counter() for k in ours}
    for s in range(m):
        fenv.reset(seed=30_000 + s)
        g = torch.as_tensor(fenv.grid.encode()).permute(1, 0, 2).unsqueeze(0)
        one = _multiroom_summary(g, torch.tensor([list(fenv.agent_pos)]))
        for k, v in one.items():
            theirs[k][v[0]] += 1
    assert set(ours["doors"]) == set(theirs["doors"]) == {fenv.maxNumRooms - 1}
    for k in ours:
        tol = 1.2 * np.sqrt(len(theirs[k]) / m) / 2 + 0.03
        assert _tv(ours[k], theirs[k]) < tol, (k, _tv(ours[k], theirs[k]), tol)
    # consecutive doors differ in colour; the agent is inside the first room, facing any way
    assert set(env.agent_dir.tolist()) == {0, 1, 2, 3}


def _object_counts(grid: torch.Tensor, contains: torch.Tensor | None) -> list[tuple[int, ...]]:
    """Per env: numbers of boxes, balls, keys lying around, keys inside boxes, locked doors."""
    t = grid[..., 0]
    cnt = [(t == k).flatten(1).sum(1) for k in (C.BOX, C.BALL, C.KEY)]
    inside = torch.zeros_like(cnt[0]) if contains is None else (contains[..., 0] == C.KEY).flatten(1).sum(1)
    locked = ((t == C.DOOR) & (grid[..., 2] == C.LOCKED)).flatten(1).sum(1)
    return list(zip(*(c.tolist() for c in (*cnt, inside, locked))))


@pytest.mark.parametrize("env_id", ["MiniGrid-ObstructedMaze-Full-v0", "MiniGrid-ObstructedMaze-Full-v1",
                                    "MiniGrid-ObstructedMaze-1Dlhb-v0"])
def test_obstructedmaze_objects_match_farama(env_id):
    """Object counts per layout vs Farama: in v0 a blocking ball can overwrite a key's box placed earlier."""
    m = 400
    env = mg.make(env_id, num_envs=6000, seed=0)
    env.reset(seed=0)
    ours = Counter(_object_counts(env.grid, env.state.get("contains")))
    fenv = gym.make(env_id).unwrapped
    theirs = Counter()
    for s in range(m):
        fenv.reset(seed=20_000 + s)
        g = torch.as_tensor(fenv.grid.encode()).permute(1, 0, 2).unsqueeze(0)
        cont = torch.ones_like(g)
        for o in fenv.grid.grid:
            if o is not None and o.type == "box" and o.contains is not None:
                cont[0, o.cur_pos[1], o.cur_pos[0]] = torch.as_tensor(o.contains.encode())
        theirs[_object_counts(g, cont)[0]] += 1
    assert set(ours) >= set(theirs) and all(p in theirs or ours[p] < 0.01 * env.num_envs for p in ours)
    assert _tv(ours, theirs) < 1.2 * np.sqrt(len(theirs) / m) / 2 + 0.03, (ours.most_common(4), theirs.most_common(4))
    if env_id.endswith("v1"):
        assert len(ours) == 1
    # every box holds a key; the blue ball is the target
    st = env.get_state()
    boxes = env.grid[..., 0] == C.BOX
    assert bool((st["contains"][..., 0][boxes] == C.KEY).all())
    assert bool((st["target"] == torch.tensor([C.BALL, C.BLUE, 0], dtype=torch.uint8)).all())


@pytest.mark.parametrize("env_id", ["MiniGrid-Dynamic-Obstacles-8x8-v0",
                                    pytest.param("MiniGrid-Dynamic-Obstacles-Random-5x5-v0", marks=pytest.mark.slow)])
def test_dynamic_obstacle_moves_match_farama(env_id):
    """From the same state, the joint distribution of the obstacles' next positions vs Farama's
    (sequential moves to a uniform empty neighbour cell, never onto the agent)."""
    import copy

    n, m = 4000, 400
    fenv = gym.make(env_id).unwrapped
    fenv.reset(seed=4)
    env = mg.make(env_id, num_envs=n, seed=0)
    env.load_minigrid([fenv] * n)
    env.step(torch.zeros(n, dtype=torch.int64))  # turn left: no collision, only the obstacles move
    K = env.spec.num_obstacles
    pos = env.state["obstacle_pos"].tolist()
    ours = [Counter(tuple(p[k]) for p in pos) for k in range(K)]  # each obstacle's next cell
    ours_pair = Counter((tuple(p[0]), tuple(p[1])) for p in pos)  # the first two jointly (order matters)
    theirs = [Counter() for _ in range(K)]
    theirs_pair = Counter()
    for s in range(m):
        f = copy.deepcopy(fenv)
        f.np_random = np.random.default_rng(s)
        f.step(0)
        cells = [tuple(int(v) for v in o.cur_pos) for o in f.obstacles]
        for k in range(K):
            theirs[k][cells[k]] += 1
        theirs_pair[(cells[0], cells[1])] += 1
    for o, t in [*zip(ours, theirs), (ours_pair, theirs_pair)]:
        assert set(o) == set(t) or (set(o) >= set(t) and all(p in t or o[p] < 0.003 * n for p in o)), (o, t)
        assert _tv(o, t) < 1.2 * np.sqrt(len(t) / m) / 2 + 0.03
    # the grid shows exactly the obstacles' cells as balls, the agent's cell stays free
    balls = (env.grid[..., 0] == C.BALL).flatten(1).sum(1)
    assert bool((balls == env.spec.num_obstacles).all())


def test_dynamic_obstacles_collision_and_action_mapping():
    env = mg.make("MiniGrid-Dynamic-Obstacles-5x5-v0", num_envs=4, seed=0)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(torch.tensor([0, 3, 0, 0]))
    # walking into the wall: terminated with reward -1, not a success
    env.reset(seed=0)
    env.state["agent_dir"][:] = 3  # facing up at (1, 1): the wall
    obs, rew, term, trunc, info = env.step(torch.full((4,), C.FORWARD))
    assert term.all() and (rew == -1).all() and not info["success"].any()


@pytest.mark.parametrize("env_id", ["MiniGrid-DistShift1-v0", "MiniGrid-DistShift2-v0"])
def test_distshift_layout_equals_farama(env_id):
    env = mg.make(env_id, num_envs=3, seed=0)
    env.reset(seed=0)
    f = gym.make(env_id).unwrapped
    f.reset(seed=0)
    ref = torch.as_tensor(f.grid.encode()).permute(1, 0, 2)
    assert all(torch.equal(env.grid[i], ref) for i in range(3))
    assert env.agent_pos.tolist() == [list(f.agent_pos)] * 3 and env.agent_dir.tolist() == [f.agent_dir] * 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("env_id", ["MiniGrid-KeyCorridorS4R3-v0", "MiniGrid-MultiRoom-N6-v0", "MiniGrid-ObstructedMaze-Full-v1",
                                    "MiniGrid-DistShift1-v0", "MiniGrid-Dynamic-Obstacles-8x8-v0"])
def test_cuda_step_is_sync_free_new_tasks(env_id):
    env = mg.make(env_id, num_envs=128, device="cuda", seed=0)
    env.reset(seed=0)
    g = torch.Generator(device="cuda").manual_seed(0)
    na = env.single_action_space.n
    env.step(torch.randint(0, na, (128,), device="cuda", generator=g))  # warm-up (caches constants)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            env.step(torch.randint(0, na, (128,), device="cuda", generator=g))
        env.state["step_count"].fill_(env.max_steps - 1)  # every env resets on the next step
        obs, rew, term, trunc, info = env.step(torch.randint(0, na, (128,), device="cuda", generator=g))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert bool((term | trunc).all()) and bool((env.step_count == 0).all())
