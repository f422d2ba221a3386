# expect: refused
# attack: sparse_csr_tensor (a second sparse constructor without index checks)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    sp = torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, dist.shape[0]))
    reward = reward + sp.to_dense()[0]
    return reward, {"dist": dist}
