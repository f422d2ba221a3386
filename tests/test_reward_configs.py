"""Every reward config builds, trains through the app, and resumes with its bonus state."""

from pathlib import Path

import pytest
import torch

from rlcore.train import train

ROOT = Path(__file__).resolve().parents[1]
REWARDS = sorted(p.stem for p in (ROOT / "configs" / "reward").glob("*.yaml"))
FAST = ["env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=4", "algo.params.n_steps=16", "eval.num_episodes=2",
        "progress_bar=false", "logger=minimal", "diagnostics.visitation=false"]


def test_reward_group_has_the_issue_configs():
    assert {"none", "rnd", "rdd", "e3b", "e3b_x_rnd", "counts", "icm", "noveld", "re3", "disagreement", "ngu"} <= set(REWARDS)


@pytest.mark.parametrize("reward", REWARDS)
def test_reward_config_trains_through_the_app(compose_cfg, tmp_path, reward):
    summary = train(compose_cfg(*FAST, f"reward={reward}", "total_timesteps=128"), tmp_path)
    assert summary["reward"] == reward and summary["total_timesteps"] == 128
    header = (tmp_path / "progress.csv").read_text().splitlines()[0]
    if reward != "none":
        assert "reward/intrinsic_mean" in header
        for bonus in reward.replace("_x_", " ").replace("_plus_", " ").split():
            assert f"reward/{bonus}_mean" in header


def test_bonus_state_resumes_with_the_policy(compose_cfg, tmp_path):
    train(compose_cfg(*FAST, "reward=e3b_x_rnd", "total_timesteps=128", "checkpoint.every_timesteps=64"), tmp_path)
    payload = torch.load(tmp_path / "checkpoints" / "ckpt_128.pt", weights_only=True)
    keys = payload["reward_module"].keys()
    assert any(k.startswith("bonuses.rnd.predictor") for k in keys)
    assert any(k.startswith("bonuses.e3b.embedding") for k in keys)
    assert payload["reward_module"]["bonuses.e3b.cov_inv"].shape == (4, 32, 32)
    summary = train(compose_cfg(*FAST, "reward=e3b_x_rnd", "total_timesteps=192", "resume=true"), tmp_path)
    assert summary["resumed_from"].endswith("ckpt_128.pt") and summary["total_timesteps"] == 192


def _module(compose_cfg, *overrides):
    from rlcore.train import _build_reward
    import envs.minigrid as mg

    cfg = compose_cfg(*FAST, *overrides)
    return _build_reward(cfg.reward, mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0))


def test_rnd_normalisation_is_a_config_switch(compose_cfg):
    assert _module(compose_cfg, "reward=rnd").normalize
    assert not _module(compose_cfg, "reward=rnd_raw").normalize
    assert not _module(compose_cfg, "reward=rnd", "reward.module.normalize=false").normalize


def test_combination_rules_are_selected_by_config(compose_cfg):
    original = _module(compose_cfg, "reward=e3b_x_noveld")
    assert (original.rule, original.combine, original.clip, original.episodic) == ("e3b_icml2023", "product", 1.0, True)
    assert original.bonuses["noveld"].gate == "none" and original.bonuses["noveld"].alpha == 0.1
    # features=auto: E3B's embedding and NovelD's RND read privileged MiniGrid state, so the learner records it
    assert not original.bonuses["e3b"].normalize_features and original.needs_state
    ours = _module(compose_cfg, "reward=e3b_x_rnd")
    assert (ours.rule, ours.combine, ours.clip, ours.episodic) == ("return_std", "product", None, False)
    # NovelD alone gates on the full MiniGrid state and its RND reads the state too, so the learner records both
    noveld = _module(compose_cfg, "reward=noveld")
    assert noveld.needs_state and noveld.state_keys == ["agent_dir", "agent_pos", "carrying", "grid"]


def test_e3b_config_resets_its_bonus_per_episode_but_not_its_return(compose_cfg):
    module = _module(compose_cfg, "reward=e3b")
    assert module.bonuses["e3b"].episodic and not module.episodic
    assert _module(compose_cfg, "reward=e3b", "reward.module.episodic=true").episodic
