"""The reward-search application built on the :mod:`rewards.llm` library.

Entry point: ``python -m rewards.llm.search.synthesize`` (:mod:`.synthesize`). The search loop
(:mod:`.loop`) asks a proposer (:mod:`.proposers`: a chat model through :mod:`.client` /
:mod:`.transcript`, or the offline program search :mod:`.offline`) for reward code, validates it with
the library's sandbox, trains each candidate in a worker (:mod:`.training`, :mod:`.worker`) and
writes a report (:mod:`.report`). Shared records (:class:`~.records.Candidate`, ...) are in
:mod:`.records`. Library modules never import this package.
"""
