"""Cross-framework comparison.

* :func:`xmarl.parity` (:mod:`xmarl.compare.parity`): one set of canonical weights and frozen
  batches in every backend; forward outputs, losses, gradients and weights after K updates
  must agree within stated tolerances. Methods join through a ``parity_cases`` hook in their
  core module (see :mod:`xmarl.compare.parity`).

Importing this package imports no deep-learning framework.
"""
