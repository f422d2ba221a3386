import torch
from stable_baselines3 import PPO as SB3PPO

import envs.minigrid as mg
from rlcore.adapters.sb3 import SB3VecEnv
from rlcore.adapters.sb3_policies import GridFeaturesExtractor, grid_policy_kwargs


def test_sb3_ppo_with_the_library_minigrid_encoder_learns_empty_5x5():
    torch.manual_seed(0)
    venv = SB3VecEnv(mg.make("MiniGrid-Empty-5x5-v0", num_envs=16, seed=0))
    model = SB3PPO("MultiInputPolicy", venv, n_steps=64, batch_size=256, n_epochs=4, learning_rate=1e-3,
                   seed=0, device="cpu", policy_kwargs=grid_policy_kwargs())
    assert isinstance(model.policy.features_extractor, GridFeaturesExtractor)
    model.learn(30_000)
    returns = [ep["r"] for ep in model.ep_info_buffer]
    assert sum(returns) / len(returns) > 0.8  # random play averages about 0.2 on this task


def test_extractor_matches_native_encoder_on_the_same_observation():
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=4, seed=0)
    obs, _ = env.reset(seed=0)
    venv = SB3VecEnv(env)
    extractor = GridFeaturesExtractor(venv.observation_space)
    sb3_style = {"image": obs["image"].permute(0, 3, 1, 2).float() if extractor.channels_first else obs["image"].float(),
                 "direction": torch.nn.functional.one_hot(obs["direction"], 4).float()}
    native = extractor.encoder({"image": obs["image"], "direction": obs["direction"]})
    assert torch.allclose(extractor(sb3_style), native)


def test_mlp_kwargs_match_the_native_mlp_policy():
    from algorithms.policies import ActorCritic
    from rlcore.adapters.sb3_policies import GridFlattenExtractor
    from rlcore.nets import FlattenObs

    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=4, seed=0)
    obs, _ = env.reset(seed=0)
    venv = SB3VecEnv(env)
    model = SB3PPO("MultiInputPolicy", venv, n_steps=8, batch_size=32, device="cpu",
                   policy_kwargs=grid_policy_kwargs(encoder="mlp"))
    extractor = model.policy.features_extractor
    assert isinstance(extractor, GridFlattenExtractor)
    sb3_image = obs["image"].permute(0, 3, 1, 2).float() if extractor.channels_first else obs["image"].float()
    assert torch.equal(extractor({"image": sb3_image}), FlattenObs(env.single_observation_space)(obs))
    native = ActorCritic(env.single_observation_space, env.single_action_space, encoder="mlp", hidden_sizes=(64, 64))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.policy) == count(native)
