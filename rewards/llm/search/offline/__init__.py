"""The offline proposer (``llm=offline``): a program-search baseline that writes reward code without a model.

:class:`OfflineProposer` is a real baseline for the reward search, not an imitation of a language
model: it builds reward programs from a fixed library of reward *terms* chosen from the same
:class:`~rewards.llm.context.EnvContext` a model sees, and improves them from the same reflection
statistics a model would get, with explicit rules. Its answers are markdown replies (a short
rationale and one fenced Python block), so the search loop extracts code from them exactly as it does
from a model's replies.

Terms (each is an unweighted float32[N] quantity; only those the state supports are offered):

MiniGrid (distances are normalised by W + H; "progress" terms are potential-based shaping
``gamma * phi(next_state) - phi(state)``, set to 0 where an episode boundary lies between the two
states, i.e. ``next_state.step_count <= state.step_count``):

* ``success``          1 when the action accomplishes the task: ``forward`` onto the goal cell,
  ``toggle`` that opens the door of interest, or ``pickup`` of the target object (mandatory; events are
  judged from ``state`` and ``action``, so they hold even when ``next_state`` is already reset);
* ``goal_progress`` / ``goal_dist``   progress toward / minus the distance to ``goal_pos``;
* ``door_progress``    progress toward ``door_pos`` while the door is not open;
* ``key_progress``     progress toward the nearest key on the grid while no key is carried (and the door is
  not open);
* ``target_progress``  progress toward the nearest object matching ``target``;
* ``subgoal_progress`` staged potential over key -> door -> goal / target;
* ``key_pickup`` / ``door_open``      1 on picking up a key (door not yet open) / opening the door;
* ``step_penalty`` (-1 per step), ``lava_penalty`` (-1 for stepping into lava), ``bump_penalty`` (-1 for
  ``forward`` into a cell that blocks it).

MuJoCo: ``forward_velocity`` (root x velocity, mandatory), ``ctrl_cost`` (minus the squared action),
``height`` (minus the squared deviation of the root height from its initial value), ``upright``
(minus the squared root pitch, or the tilt of a free root), ``alive`` (1 per step, only where the env
terminates on unhealthy states), ``joint_velocity`` (minus the mean squared joint velocity).

A program is a weighted sum ``reward = sum_t w_t * term_t``; the components dict holds the *weighted*
terms (they sum to the reward). Weights and options are stored in the code's header as JSON
(``# terms: {...}``, ``# options: {...}``), so mutation reads them back without parsing Python.

Initial proposals (``reflection=None``): every program has the mandatory terms plus a random subset
of the optional ones (size 1 .. ``max_terms`` - #mandatory); candidate ``i`` is guaranteed the
``i``-th optional term (in priority order, progress terms first), so K candidates cover the library;
each weight is ``base_weight * weight_scale ** u`` with ``u ~ U(-1, 1)``; the distance metric
(Manhattan or Euclidean) is drawn per program. Candidates are pairwise distinct.

Mutation (``reflection`` given), in this order:

1. Parents: the reflected candidates with a ``# terms`` header and no error, ranked by ``fitness``
   (missing fitness ranks last); the best ``num_parents`` are kept. Without parents, all proposals are
   fresh initial samples.
2. Rebalancing from the component statistics (magnitude = mean over the recorded points of
   ``|mean|``; a component is *active* if any recorded ``min``/``max`` is nonzero). Mandatory terms
   anchor the scale and are never rescaled or dropped. An optional term that is never active is
   dropped. A term whose magnitude exceeds ``dominance`` x the median magnitude of the other active
   terms is *dominant*: its weight is scaled by ``dominance * median / magnitude`` clipped to
   [0.1, 0.5], and it ends at most half its parent's weight. A term below ``vanish`` x that median is
   *vanishing*: scaled by ``vanish * median / magnitude`` clipped to [2, 10], ending at least twice its
   parent's weight.
3. The first proposal (the elite) is the best parent after rebalancing only. The others take parents
   in turn, are rebalanced, then every weight is multiplied by ``exp(g)``, ``g ~ N(0, (ln
   weight_scale / 2)^2)`` (the rebalancing bounds of step 2 still hold afterwards), with probability
   ``p_add`` an unused term is added (up to ``max_terms``), with probability ``p_drop`` a random
   optional term that is not vanishing is dropped, and with probability ``p_metric`` the distance
   metric flips.
4. When no parent has a positive fitness (no success signal yet), the second half of the proposals are
   fresh initial samples, to explore other term sets.
5. Proposals are pairwise distinct and differ from every reflected program (a duplicate is perturbed
   again).

Everything is deterministic given ``(seed, rng_seed)``; the settings and their defaults are
:class:`OfflineConfig`.

Modules: :mod:`.terms` (a term, weight rounding), :mod:`.minigrid_terms` and :mod:`.mujoco_terms`
(the libraries), :mod:`.program` (programs: rendering and parsing), :mod:`.search` (the proposer
and its :class:`OfflineConfig`).
"""

from rewards.llm.search.offline.program import Program, candidate_terms, parse_program, render_program
from rewards.llm.search.offline.search import OfflineConfig, OfflineProposer
from rewards.llm.search.offline.terms import TermDef

__all__ = ["OfflineConfig", "OfflineProposer", "Program", "TermDef", "candidate_terms", "parse_program", "render_program"]
