"""LLM-written reward code: the library (sandbox, code extraction, the ``CodeReward`` module, env context).

Library modules: :mod:`.context` (what a reward writer knows of an env), :mod:`.extract` (reward code
out of a chat reply), :mod:`.sandbox` (policy, restricted runtime, limited validation child),
:mod:`.reward_module` (:class:`~rewards.llm.reward_module.CodeReward`). The reward-search application
built on them is :mod:`rewards.llm.search`; library modules never import it.
"""
