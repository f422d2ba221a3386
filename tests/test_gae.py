import torch

from rlcore.rollout import compute_gae


def test_gae_matches_hand_computed_case():
    # One env, three steps; the episode terminates after step 1 and a new one starts at step 2.
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0], [2.0], [0.5]])
    values = torch.tensor([[0.5], [1.0], [0.2]])
    next_values = torch.tensor([[1.0], [7.0], [0.4]])  # 7.0 is the terminal state's value: must be ignored
    terminated = torch.tensor([[False], [True], [False]])
    done = terminated.clone()
    adv, ret = compute_gae(rewards, values, next_values, terminated, done, gamma, lam)
    d0 = 1.0 + 0.9 * 1.0 - 0.5   # 1.4
    d1 = 2.0 + 0.0 - 1.0          # 1.0
    d2 = 0.5 + 0.9 * 0.4 - 0.2    # 0.66
    a2 = d2
    a1 = d1                        # recursion stops at the episode end
    a0 = d0 + 0.9 * 0.8 * a1      # 2.12
    expected = torch.tensor([[a0], [a1], [a2]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, expected + values, atol=1e-6)


def test_truncation_bootstraps_from_final_value():
    rewards = torch.tensor([[0.0]])
    values = torch.tensor([[0.0]])
    next_values = torch.tensor([[5.0]])
    truncated = torch.tensor([[True]])
    adv, _ = compute_gae(rewards, values, next_values, torch.tensor([[False]]), truncated, 0.5, 0.95)
    assert torch.allclose(adv, torch.tensor([[2.5]]))  # gamma * V(final obs)
    adv_term, _ = compute_gae(rewards, values, next_values, torch.tensor([[True]]), truncated, 0.5, 0.95)
    assert torch.allclose(adv_term, torch.tensor([[0.0]]))


def test_non_episodic_stream_runs_across_episode_ends():
    rewards = torch.tensor([[0.0], [1.0]])
    values = torch.zeros(2, 1)
    next_values = torch.zeros(2, 1)
    no = torch.zeros(2, 1, dtype=torch.bool)
    adv, _ = compute_gae(rewards, values, next_values, no, no, 1.0, 1.0)
    assert torch.allclose(adv[:, 0], torch.tensor([1.0, 1.0]))
    stop = torch.tensor([[True], [False]])
    adv_ep, _ = compute_gae(rewards, values, next_values, no, stop, 1.0, 1.0)
    assert torch.allclose(adv_ep[:, 0], torch.tensor([0.0, 1.0]))


def test_gae_is_batched_over_envs():
    torch.manual_seed(0)
    T, N = 7, 5
    r, v, nv = torch.randn(T, N), torch.randn(T, N), torch.randn(T, N)
    term = torch.rand(T, N) < 0.2
    done = term | (torch.rand(T, N) < 0.1)
    adv, _ = compute_gae(r, v, nv, term, done, 0.99, 0.95)
    for i in range(N):
        a_i, _ = compute_gae(r[:, i:i + 1], v[:, i:i + 1], nv[:, i:i + 1], term[:, i:i + 1], done[:, i:i + 1], 0.99, 0.95)
        assert torch.allclose(adv[:, i:i + 1], a_i)
