"""Cross-framework comparison.

* :func:`xmarl.parity` (:mod:`xmarl.compare.parity`): one set of canonical weights and frozen
  batches in every backend; forward outputs, losses, gradients and weights after K updates
  must agree within stated tolerances. Methods join through a ``parity_cases`` hook in their
  core module (see :mod:`xmarl.compare.parity`).
* :func:`xmarl.compare` (:mod:`xmarl.compare.runner`): the methods × envs × backends × seeds
  matrix on a local process pool or Ray, aggregated into a Markdown report with learning-curve
  PNGs, IQM and bootstrap confidence intervals and a test of whether backends differ.

This package is also callable: ``xmarl.compare(...)`` is :func:`xmarl.compare.runner.compare`
(``xmarl.parity`` is :func:`xmarl.compare.parity.parity`; ``xmarl.compare.parity`` stays the module).
Importing it imports no deep-learning framework, scipy, matplotlib or ray.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from xmarl.compare.runner import CompareResult, compare


class _CallableModule(types.ModuleType):
    """Lets ``xmarl.compare`` be both this package and the :func:`compare` function."""

    def __call__(self, *args: Any, **kwargs: Any) -> CompareResult:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
_CallableModule.__call__.__doc__ = compare.__doc__
