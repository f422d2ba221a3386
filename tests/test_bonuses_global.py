"""Global-novelty bonuses: RND, RDD, hashed counts (exact / SimHash), ICM, NovelD, RE3, Disagreement."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs.minigrid as mg
from rewards.intrinsic.counts import CountBonus
from rewards.intrinsic.disagreement import Disagreement
from rewards.intrinsic.hashing import SimHash, StateKeyer, occurrence_rank
from rewards.intrinsic.icm import ICM
from rewards.intrinsic.noveld import NovelD
from rewards.intrinsic.rdd import RDD
from rewards.intrinsic.re3 import RE3
from rewards.intrinsic.rnd import RND
from rlcore.batch import TransitionBatch

L = 8
BOX = gym.spaces.Box(0.0, 1.0, (L,), np.float32)
DISC_OBS = gym.spaces.Discrete(L)
ACT = gym.spaces.Discrete(3)
SMALL = dict(feature_dim=16, hidden_dim=32)

FACTORIES = {
    "rnd": lambda o, a: RND(o, a, **SMALL, minibatch_size=64),
    "rdd": lambda o, a: RDD(o, a, **SMALL, minibatch_size=64),
    "counts": lambda o, a: CountBonus(o, a, table_size=4096),
    "icm": lambda o, a: ICM(o, a, **SMALL, minibatch_size=64),
    "noveld": lambda o, a: NovelD(o, a, **SMALL, minibatch_size=64, capacity=32),
    "re3": lambda o, a: RE3(o, a, embed_dim=16, hidden_dim=32),
    "disagreement": lambda o, a: Disagreement(o, a, ensemble_size=3, **SMALL, minibatch_size=64),
}
LEARNED = ["rnd", "rdd", "icm", "noveld", "disagreement"]


def chain_batch(obs_pos, next_pos, action=None, done=None, space=BOX) -> TransitionBatch:
    """A [T, N] batch over chain states: one-hot float rows for Box spaces, indices for Discrete."""
    s, s2 = torch.as_tensor(obs_pos), torch.as_tensor(next_pos)
    T, N = s2.shape
    enc = (lambda p: torch.nn.functional.one_hot(p, L).float()) if isinstance(space, gym.spaces.Box) else (lambda p: p)
    action = torch.zeros(T, N, dtype=torch.long) if action is None else torch.as_tensor(action)
    done = torch.zeros(T, N, dtype=torch.bool) if done is None else torch.as_tensor(done)
    return TransitionBatch(obs=enc(s), action=action, reward=torch.zeros(T, N), next_obs=enc(s2), terminated=done,
                           truncated=torch.zeros(T, N, dtype=torch.bool))


def walk_batch(next_pos, done=None, space=BOX) -> TransitionBatch:
    """Chain batch whose obs are the previous next_obs (the first row starts at state 0)."""
    s2 = torch.as_tensor(next_pos)
    s = torch.cat([torch.zeros_like(s2[:1]), s2[:-1]])
    if done is not None:  # after a done the next step starts from state 0
        d = torch.as_tensor(done)
        s[1:] = torch.where(d[:-1], torch.zeros_like(s[1:]), s[1:])
    return chain_batch(s, s2, done=done, space=space)


def random_chain(T=8, N=4, seed=0, space=BOX) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, L, (T, N), generator=g)
    s2 = torch.randint(0, L, (T, N), generator=g)
    a = torch.randint(0, 3, (T, N), generator=g)
    return chain_batch(s, s2, action=a, space=space)


@pytest.fixture(scope="module")
def minigrid_batch():
    """A real [T=6, N=4] rollout of MiniGrid Empty-5x5 with random actions."""
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0)
    obs, _ = env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(6):
        a = torch.randint(0, 3, (4,), generator=g)
        state = env.get_state()
        nxt, r, te, tr, info = env.step(a)
        rows.append((obs, a, r, info["final_obs"], te, tr, state, env.get_state()))
        obs = nxt

    def stack(xs):
        return {k: torch.stack([x[k] for x in xs]) for k in xs[0]} if isinstance(xs[0], dict) else torch.stack(xs)

    cols = list(zip(*rows))
    batch = TransitionBatch(obs=stack(cols[0]), action=stack(cols[1]), reward=stack(cols[2]).float(),
                            next_obs=stack(cols[3]), terminated=stack(cols[4]), truncated=stack(cols[5]),
                            state=stack(cols[6]), next_state=stack(cols[7]))
    return env, batch


# --------------------------------------------------------------------------------- all bonuses

@pytest.mark.parametrize("name", list(FACTORIES))
def test_shape_dtype_device_finite_box_and_minigrid(name, minigrid_batch):
    torch.manual_seed(0)
    env, mg_batch = minigrid_batch
    for space, batch in ((BOX, random_chain()), (env.single_observation_space, mg_batch)):
        bonus = FACTORIES[name](space, ACT)
        out = bonus.compute(batch)
        assert out.shape == batch.batch_shape and out.dtype == torch.float32 and out.device == batch.device
        assert torch.isfinite(out).all()
        metrics = bonus.update(batch)
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
        step = bonus.compute(TransitionBatch(**{k: (v[0] if not isinstance(v, dict) else {kk: vv[0] for kk, vv in v.items()})
                                               for k, v in vars(batch).items() if v is not None}))
        assert step.shape == batch.batch_shape[1:] and torch.isfinite(step).all()  # [N] step-time batches too


@pytest.mark.parametrize("name", list(FACTORIES))
def test_unsupported_observation_space_names_bonus_and_space(name):
    with pytest.raises(ValueError, match=rf"'{name}'.*Text"):
        FACTORIES[name](gym.spaces.Text(5), ACT)


@pytest.mark.parametrize("name", ["rnd", "rdd", "icm", "noveld", "re3", "disagreement"])
def test_four_dim_box_rejected_by_mlp_encoder(name):
    space = gym.spaces.Box(0, 1, (2, 3, 4, 5), np.float32)
    with pytest.raises(ValueError, match=rf"'{name}'.*Box"):
        FACTORIES[name](space, ACT)


@pytest.mark.parametrize("name", ["icm", "disagreement"])
def test_unsupported_action_space(name):
    with pytest.raises(ValueError, match=rf"'{name}'.*MultiDiscrete"):
        FACTORIES[name](BOX, gym.spaces.MultiDiscrete([2, 2]))


def dominated_batch(T=16, N=8, often=1, seed=0) -> TransitionBatch:
    """Mostly the transition (0 -> often) with action 1, plus a few transitions among states 0-3."""
    g = torch.Generator().manual_seed(seed)
    s = torch.zeros(T, N, dtype=torch.long)
    s2 = torch.full((T, N), often)
    a = torch.ones(T, N, dtype=torch.long)
    rare = torch.rand(T, N, generator=g) < 0.1
    s2 = torch.where(rare, torch.randint(0, 4, (T, N), generator=g), s2)
    return chain_batch(s, s2, action=a)


@pytest.mark.parametrize("name", ["rnd", "rdd", "icm", "disagreement"])
def test_learned_bonus_novel_state_scores_higher(name):
    torch.manual_seed(1)
    kwargs = dict(lr=3e-3, epochs=4)
    if name in ("rnd", "rdd"):
        kwargs["update_proportion"] = 1.0
    cls = {"rnd": RND, "rdd": RDD, "icm": ICM, "disagreement": Disagreement}[name]
    bonus = cls(BOX, ACT, **SMALL, minibatch_size=64, **kwargs)
    train = dominated_batch()
    for _ in range(15):
        bonus.compute(train)
        bonus.update(train)
    # env 0: the familiar transition 0 -(1)-> 1; env 1: unseen 6 -(2)-> 7
    probe = chain_batch([[0, 6]], [[1, 7]], action=[[1, 2]])
    b = bonus.compute(probe)[0]
    assert b[1] > 2 * b[0], (name, b)


def test_counts_and_re3_novel_state_scores_higher():
    train = dominated_batch()
    counts = CountBonus(DISC_OBS, ACT)
    counts.compute(chain_batch(train.obs.argmax(-1), train.next_obs.argmax(-1), space=DISC_OBS))
    b = counts.compute(chain_batch([[0, 0]], [[1, 7]], space=DISC_OBS))[0]
    assert b[1] == 1.0 and b[0] < 0.2
    torch.manual_seed(0)
    re3 = RE3(BOX, ACT, k=3, embed_dim=16)
    mixed = chain_batch(torch.zeros(4, 4, dtype=torch.long), [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 7]])
    b = re3.compute(mixed)
    assert b[0, 0] == 0.0 and b[3, 3] > 0.0  # the repeated state has 3 identical neighbours


def test_noveld_novel_state_scores_higher():
    torch.manual_seed(1)
    bonus = NovelD(BOX, ACT, **SMALL, lr=3e-3, epochs=4, update_proportion=1.0, minibatch_size=64)
    train = dominated_batch()
    for _ in range(15):
        bonus.compute(train)
        bonus.update(train)
    bonus.reset(torch.ones(2, dtype=torch.bool))
    b = bonus.compute(chain_batch([[0, 0]], [[1, 7]]))[0]  # from the familiar state 0 to 1 (familiar) / 7 (new)
    assert b[1] > 2 * b[0] and b[1] > 0


@pytest.mark.parametrize("name", list(FACTORIES))
def test_state_dict_round_trip_gives_identical_bonuses(name, minigrid_batch):
    env, batch = minigrid_batch
    space = env.single_observation_space
    torch.manual_seed(0)
    bonus = FACTORIES[name](space, ACT)
    bonus.compute(batch)
    bonus.update(batch)
    torch.manual_seed(123)  # a differently initialised clone
    clone = FACTORIES[name](space, ACT)
    clone.load_state_dict(bonus.state_dict())
    half = batch.map(lambda x: x[:3])
    assert torch.equal(bonus.compute(half), clone.compute(half))
    torch.manual_seed(7)
    bonus.update(half)
    torch.manual_seed(7)
    clone.update(half)  # optimiser state travelled too: the same step gives the same networks
    assert torch.allclose(bonus.compute(half), clone.compute(half), atol=1e-6)


def test_rnd_target_and_its_embeddings_stay_fixed(minigrid_batch):
    env, batch = minigrid_batch
    torch.manual_seed(0)
    rnd = RND(env.single_observation_space, ACT, **SMALL, update_proportion=1.0)
    target = {k: v.clone() for k, v in rnd.target.state_dict().items()}
    predictor = {k: v.clone() for k, v in rnd.predictor.state_dict().items()}
    rnd.compute(batch)
    rnd.update(batch)
    assert "0.object_embed.weight" in target
    assert all(torch.equal(v, rnd.target.state_dict()[k]) for k, v in target.items())
    assert any(not torch.equal(v, rnd.predictor.state_dict()[k]) for k, v in predictor.items())


@pytest.mark.parametrize("cls", [ICM, Disagreement])
def test_continuous_actions(cls):
    torch.manual_seed(0)
    bonus = cls(BOX, gym.spaces.Box(-1, 1, (2,), np.float32), **SMALL)
    batch = random_chain()
    batch = TransitionBatch(**{**vars(batch), "action": torch.rand(*batch.batch_shape, 2) * 2 - 1})
    out = bonus.compute(batch)
    assert out.shape == batch.batch_shape and torch.isfinite(out).all()
    assert all(math.isfinite(v) for v in bonus.update(batch).values())


# ---------------------------------------------------------------------------------------- counts

def test_count_bonus_is_exactly_beta_over_sqrt_n_in_time_order():
    counts = CountBonus(DISC_OBS, ACT, beta=0.5)
    # env 0 reaches 2, 2, 3; env 1 reaches 3, 2, 2 (within a step env 0 is counted first)
    b = counts.compute(walk_batch([[2, 3], [2, 2], [3, 2]], space=DISC_OBS))
    n = torch.tensor([[1, 1], [2, 3], [2, 4]], dtype=torch.float32)
    assert torch.allclose(b, 0.5 / n.sqrt())
    # counts are global: they carry over to the next rollout and are not reset by episode ends
    b = counts.compute(walk_batch([[2, 5]], done=[[True, True]], space=DISC_OBS))
    assert torch.allclose(b[0], torch.tensor([0.5 / math.sqrt(5), 0.5]))
    counts.reset(torch.ones(2, dtype=torch.bool))
    assert torch.allclose(counts.compute(walk_batch([[5]], space=DISC_OBS).map(lambda x: x[0])), torch.tensor(0.5 / math.sqrt(2)))


def test_count_bonus_on_minigrid_hashes_image_and_direction(minigrid_batch):
    env, batch = minigrid_batch
    counts = CountBonus(env.single_observation_space, ACT)
    one = batch.map(lambda x: x[:1, :1])
    assert counts.compute(one).item() == 1.0 and counts.compute(one).item() == pytest.approx(1 / math.sqrt(2))
    turned = TransitionBatch(**{**vars(one), "next_obs": {**one.next_obs, "direction": (one.next_obs["direction"] + 1) % 4}})
    assert counts.compute(turned).item() == 1.0  # same image, other direction: another state


def test_count_bonus_on_state_keys(minigrid_batch):
    env, batch = minigrid_batch
    counts = CountBonus(env.single_observation_space, ACT, state_keys=["agent_pos"])
    b = counts.compute(batch)
    pos = batch.next_state["agent_pos"].reshape(-1, 2)
    expected = torch.tensor([1 / math.sqrt(int((pos[: i + 1] == pos[i]).all(-1).sum())) for i in range(len(pos))])
    assert torch.allclose(b.reshape(-1), expected)
    with pytest.raises(ValueError, match="next_state"):
        counts.compute(TransitionBatch(**{**vars(batch), "next_state": None}))


def test_occurrence_rank():
    keys = torch.tensor([5, 3, 5, 5, 3, 9])
    assert occurrence_rank(keys).tolist() == [0, 0, 1, 2, 1, 0]


def test_simhash_near_identical_same_code_distant_different():
    torch.manual_seed(0)
    sim = SimHash(16, k=32, seed=0)
    x = torch.randn(64, 16)
    same = sim(x) == sim(x + 1e-6 * torch.randn(64, 16))
    assert same.all()
    assert (sim(x) != sim(-x)).all()                      # opposite vectors flip every bit
    far = sim(x) != sim(torch.randn(64, 16))
    assert far.float().mean() > 0.95
    wide = SimHash(16, k=100, seed=0)                     # > 62 bits: packed into two columns
    assert wide(x).shape == (64, 2) and (wide(x) == wide(x + 1e-6)).all()
    # the count bonus on a float Box defaults to SimHash: near-identical observations share a count
    counts = CountBonus(gym.spaces.Box(-5, 5, (16,), np.float32), ACT, simhash_bits=32)
    assert counts.keyer.mode == "simhash"
    obs = x[:1].expand(2, 16).clone()
    obs[1] += 1e-6
    b = counts.compute(TransitionBatch(obs=obs, action=torch.zeros(2, dtype=torch.long), reward=torch.zeros(2),
                                       next_obs=obs, terminated=torch.zeros(2, dtype=torch.bool),
                                       truncated=torch.zeros(2, dtype=torch.bool)))
    assert torch.allclose(b, torch.tensor([1.0, 1 / math.sqrt(2)]))


def test_state_keyer_errors():
    with pytest.raises(ValueError, match="SimHash"):
        StateKeyer(DISC_OBS, "bonus 'counts'", mode="simhash")
    with pytest.raises(ValueError, match="hash mode"):
        StateKeyer(BOX, "bonus 'counts'", mode="bogus")


# ------------------------------------------------------------------------------------------- RDD

def test_rdd_bonus_decays_with_visits():
    """Mean over seeds: the bonus of a state falls as it is visited more; an unseen state stays high."""
    checkpoints, curves, unseen = [1, 8, 64], [], []
    visit = chain_batch([[0]], [[3]])
    for seed in range(4):
        torch.manual_seed(seed)
        rdd = RDD(BOX, ACT, **SMALL, lr=3e-3, epochs=1, update_proportion=1.0, normalize_obs=False)
        values = []
        for n in range(1, checkpoints[-1] + 1):
            rdd.update(visit)  # one visit = one fresh target draw regressed once
            if n in checkpoints:
                values.append(float(rdd.compute(visit)))
        curves.append(values)
        unseen.append(float(rdd.compute(chain_batch([[0]], [[6]]))))
    mean = torch.tensor(curves).mean(0)
    assert mean[0] > mean[1] > mean[2], mean
    assert sum(unseen) / len(unseen) > mean[2]


def test_rdd_targets_are_resampled_each_time():
    """The predictor cannot fit fresh draws: the loss stays near the target variance sigma^2."""
    torch.manual_seed(0)
    rdd = RDD(BOX, ACT, **SMALL, sigma=0.5, lr=3e-3, epochs=1, update_proportion=1.0, normalize_obs=False)
    batch = chain_batch(torch.zeros(4, 8, dtype=torch.long), torch.full((4, 8), 2))
    losses = [rdd.update(batch)["loss"] for _ in range(100)]
    assert 0.15 < sum(losses[-20:]) / 20 < 0.4  # ~ sigma^2 = 0.25
    rdd_var = RDD(BOX, ACT, **SMALL, sigma=0.5, state_dependent_std=True, variance_normalized=True)
    assert torch.isfinite(rdd_var.compute(batch)).all()


def test_rnd_normalised_by_running_std_of_its_intrinsic_return_as_burda_et_al():
    import copy

    from rewards.intrinsic.combine import IntrinsicReward

    torch.manual_seed(0)
    rnd = RND(BOX, ACT, **SMALL)
    bare = copy.deepcopy(rnd)
    gamma = 0.9
    norm = IntrinsicReward(BOX, ACT, {"rnd": rnd}, gamma=gamma)
    raw = IntrinsicReward(BOX, ACT, {"rnd": copy.deepcopy(rnd)}, gamma=gamma, normalize=False)
    returns, running = [], torch.zeros(4)
    for seed in (0, 1):
        batch = random_chain(T=6, N=4, seed=seed)
        batch.terminated[2] = True  # RND is global: its return runs on across episode ends
        b = raw.compute(batch)
        assert torch.equal(b, bare.compute(batch))  # normalize=False: the RND bonus as it is
        for t in range(6):  # Burda et al.'s RewardForwardFilter: R_t = gamma R_{t-1} + r_t, per env
            running = gamma * running + b[t]
            returns.append(running.clone())
        std = torch.stack(returns).std(unbiased=False)  # pooled over every rollout so far
        assert torch.allclose(norm.compute(batch), b / std, rtol=1e-3)
    assert not norm.episodic and not raw.episodic


# ---------------------------------------------------------------------------------------- NovelD

def test_noveld_first_visit_gating_resets_only_ended_envs():
    torch.manual_seed(0)
    bonus = NovelD(DISC_OBS, ACT, **SMALL, alpha=0.0)  # alpha 0: bonus = novelty(s') where gated in
    # env 0: 0->1, 1->2 (episode ends), 0->1 (new episode: 1 is new again)
    # env 1: 0->1, 1->2, 2->1 (1 already seen this episode)
    batch = walk_batch([[1, 1], [2, 2], [1, 1]], done=[[False, False], [True, False], [False, False]], space=DISC_OBS)
    b = bonus.compute(batch)
    assert (b[:, 0] > 0).all() and (b[:2, 1] > 0).all() and b[2, 1] == 0
    # reset(mask) clears only env 1; env 0 still remembers 0 and 1 from its current episode
    bonus.reset(torch.tensor([False, True]))
    b = bonus.compute(chain_batch([[1, 1]], [[0, 2]], space=DISC_OBS))
    assert b[0, 0] == 0 and b[0, 1] > 0
    # returning to the episode's first observation is not a first visit
    bonus.reset(torch.tensor([True, True]))
    b = bonus.compute(chain_batch([[4, 4]], [[4, 5]], space=DISC_OBS))
    assert b[0, 0] == 0 and b[0, 1] > 0


def test_noveld_memory_ring_and_state_keys(minigrid_batch):
    env, batch = minigrid_batch
    bonus = NovelD(env.single_observation_space, ACT, **SMALL, capacity=2, state_keys=["agent_pos"])
    out = bonus.compute(batch)
    assert out.shape == batch.batch_shape and bonus.memory.keys.shape == (4, 2)


def _grid_batch(env, steps):
    """A [T, 1] MiniGrid batch whose observations are all the env's first one and whose privileged
    states are the env's first state with (agent_pos, agent_dir, grid edits) set per step."""
    obs, _ = env.reset(seed=0)
    base = {k: v.clone() for k, v in env.get_state().items()}
    states = []
    for pos, direction, edit in steps:
        st = {k: v.clone() for k, v in base.items()}
        st["agent_pos"][0] = torch.tensor(pos)
        st["agent_dir"][0] = direction
        if edit is not None:  # (x, y) of a floor cell that gets a ball
            st["grid"][0, edit[1], edit[0]] = torch.tensor([6, 2, 0], dtype=torch.uint8)
        states.append(st)

    def stack(rows):
        return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}

    T = len(steps) - 1
    rep = {k: v.unsqueeze(0).expand(T, *v.shape).clone() for k, v in obs.items()}
    zeros = torch.zeros(T, 1)
    return TransitionBatch(obs=rep, action=torch.zeros(T, 1, dtype=torch.long), reward=zeros, next_obs=rep,
                           terminated=zeros.bool(), truncated=zeros.bool(), state=stack(states[:-1]),
                           next_state=stack(states[1:]))


def test_noveld_gate_counts_full_grid_states_with_heading_as_the_original():
    # the gate alone: the inner RND reads the observation (features="obs") so only the gate asks for state
    env = mg.make("MiniGrid-Empty-8x8-v0", num_envs=1, seed=0)
    space = env.single_observation_space
    torch.manual_seed(0)
    bonus = NovelD(space, ACT, **SMALL, alpha=0.0, features="obs")
    assert bonus.gate == "state" and bonus.state_keys == ["grid", "agent_pos", "agent_dir"] and bonus.needs_state
    # start (1,1) facing right; turn down at (1,1); turn back right (= the start); step to (2,1);
    # back at (1,1) facing right but with a ball now lying at (5,5), out of the agent's sight
    batch = _grid_batch(env, [((1, 1), 0, None), ((1, 1), 1, None), ((1, 1), 0, None), ((2, 1), 0, None),
                              ((1, 1), 0, (5, 5))])
    visits = bonus.first_visits(batch)[:, 0].tolist()
    assert visits == [True, False, True, True]  # heading and far-away grid changes make new states
    # the egocentric gate (the old default) sees one view throughout: nothing is new after the start
    ego = NovelD(space, ACT, **SMALL, alpha=0.0, features="obs", gate="obs")
    assert not ego.needs_state and not ego.first_visits(batch).any()
    # gate="none" (E3B x NovelD's NovelD factor) rewards every step
    free = NovelD(space, ACT, **SMALL, alpha=0.0, features="obs", gate="none")
    assert not free.needs_state and (free.compute(batch) > 0).all()


def test_noveld_state_gate_without_state_names_the_bonus():
    env = mg.make("MiniGrid-Empty-8x8-v0", num_envs=1, seed=0)
    batch = _grid_batch(env, [((1, 1), 0, None), ((2, 1), 0, None)])
    bare = TransitionBatch(obs=batch.obs, action=batch.action, reward=batch.reward, next_obs=batch.next_obs,
                           terminated=batch.terminated, truncated=batch.truncated)
    with pytest.raises(ValueError, match=r"bonus 'noveld'.*no next_state.*gate='obs'"):
        NovelD(env.single_observation_space, ACT, **SMALL, features="obs").compute(bare)
    with pytest.raises(ValueError, match=r"bonus 'noveld'.*gate"):
        NovelD(env.single_observation_space, ACT, **SMALL, gate="heading")
    with pytest.raises(ValueError, match=r"bonus 'noveld'.*state_keys.*'state' gate"):
        NovelD(BOX, ACT, **SMALL, gate="obs", state_keys=["agent_pos"])
    assert NovelD(BOX, ACT, **SMALL).gate == "obs"  # on other spaces the observation is the state


# --------------------------------------------------------------------------------- integration

def test_ppo_with_rnd_on_minigrid_logs_intrinsic_reward():
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0)
    from algorithms.ppo import PPO

    rnd = RND(env.single_observation_space, env.single_action_space, **SMALL, minibatch_size=32)
    log = []
    PPO(env, n_steps=16, n_epochs=1, n_minibatches=2, seed=0, reward_module=rnd).learn(
        2 * 16 * 4, callback=lambda m, model: log.append(m))
    assert len(log) == 2
    for m in log:
        assert math.isfinite(m["reward/intrinsic_mean"]) and m["reward/intrinsic_mean"] > 0
        assert {"reward/loss", "reward/bonus_mean", "reward/bonus_std"} <= set(m)


# ------------------------------------------------------------------------------------------ CUDA

@pytest.mark.cuda
@pytest.mark.parametrize("name", list(FACTORIES))
def test_bonuses_on_cuda(name, minigrid_batch):
    env, batch = minigrid_batch
    torch.manual_seed(0)
    for space, data in ((BOX, random_chain()), (env.single_observation_space, batch)):
        bonus = FACTORIES[name](space, ACT).to("cuda")
        data = data.to("cuda")
        out = bonus.compute(data)
        assert out.device.type == "cuda" and out.shape == data.batch_shape and torch.isfinite(out).all()
        bonus.update(data)
        assert torch.isfinite(bonus.compute(data)).all()


def test_count_bonus_over_state_keys_gets_state_from_native_ppo():
    from algorithms.ppo import PPO
    from rewards.intrinsic.combine import IntrinsicReward
    from rewards.intrinsic.counts import CountBonus

    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0)
    space = env.single_observation_space
    module = IntrinsicReward(space, ACT, bonuses={"counts": CountBonus(space, ACT, state_keys=["agent_pos"]),
                                                  "rnd": RND(space, ACT, **SMALL)})
    assert module.needs_state and module.state_keys == ["agent_pos"]
    PPO(env, n_steps=16, n_epochs=1, n_minibatches=2, seed=0, reward_module=module).learn(2 * 16 * 4)
    counts = module.bonuses["counts"].counts
    # 128 transitions counted over at most 9 free cells of Empty-5x5: few distinct slots, many visits each
    assert int(counts.sum()) == 128 and 1 < int((counts > 0).sum()) <= 9
