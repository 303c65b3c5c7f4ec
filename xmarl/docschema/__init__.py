"""One docstring schema for every backend.

``schema.yaml`` beside this file describes every public class of the Representation, Policy
and Learner interfaces and every class of the shipped methods: a summary, each constructor
parameter (name, type, default, meaning), each public method (arguments, returns) and the
paper. :func:`documented` renders an entry into the ``__doc__`` of a class (numpy style, read
by Sphinx's napoleon), so the torch, TensorFlow and MindSpore classes of one name carry the
same text. :mod:`xmarl.docschema.check` compares the schema with the real signatures.

This package imports no deep-learning framework.
"""

from __future__ import annotations

from xmarl.docschema.rendering import render
from xmarl.docschema.schema import (
    FORWARD_HOOKS,
    algorithm_entry,
    algorithms,
    class_entry,
    classes,
    documented,
    load,
)

__all__ = [
    "FORWARD_HOOKS",
    "algorithm_entry",
    "algorithms",
    "class_entry",
    "classes",
    "documented",
    "load",
    "render",
]
