"""The bookkeeping every learner shares, written once on top of each backend's primitives.

A backend learner subclasses :class:`LearnerBase` (or a method's own subclass of it, e.g.
:class:`xmarl.core.coma.COMALearnerBase`), names its method core, its primitives module, its
network classes and its optimiser, and writes only the framework math::

    @registry.register("learner", "coma", backend="torch")
    class COMALearner(coma.COMALearnerBase):
        backend, method, ops = "torch", coma.COMA, torch_ops
        Networks = {"actor": COMAActor, "critic": COMACritic, "target_critic": COMACritic}
        Optimizer = Adam

        def _update_step(self, b): ...       # forward, losses, gradients, one optimiser step
        def _gradients_step(self, b): ...    # ({loss name: loss}, {network: [gradients]})

Everything else is here: building the networks from the method's layouts, naming parameters,
one optimiser per trained network, weights and optimiser state in and out under canonical
names, numpy batches to framework tensors by the method's batch schema, compiled calls,
metrics and gradients back to numpy. ``ops`` is the backend's ``xmarl.backends.<name>.ops``:
the same small set of functions in every backend (``parameter``, ``read``, ``write``,
``tensors``, ``compile``, ``numpy``, ``metrics``, ``name_parameters``), in the manner of Keras 3's
``keras.src.backend``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from xmarl.core.interfaces import Batch, Learner, Weights, check_weights
from xmarl.core.layout import Layout
from xmarl.core.method import MethodCore
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


@documented
class LearnerBase(Learner):
    # documented in xmarl/docschema/schema.yaml (LearnerBase): networks from the method's layouts,
    # one optimiser per trained network, batches to tensors, compiled steps, numpy back out

    backend: str
    method: MethodCore
    ops: ModuleType
    Networks: dict[str, type]
    Optimizer: type

    def __init__(self, spec: AgentSpec, config: Any, weights: Weights) -> None:
        self.method.check(spec, config)
        self.spec, self.cfg = spec, config
        self.shapes = self.method.param_shapes(spec, config)
        self.nets = {name: self.Networks[name](spec, config) for name in self.method.networks}
        for name, net in self.nets.items():
            setattr(self, name, net)
        self.policy = self.nets[self.method.policy_network]
        self.ops.name_parameters(self.nets)
        betas, eps = config.adam.betas, config.adam.eps
        self.optimizers = {net: self.Optimizer(list(self.nets[net].canonical().values()), lr, betas, eps,
                                               name=f"{net}_opt")
                           for net, lr in self.method.learning_rates(config).items()}
        for name, opt in self.optimizers.items():
            setattr(self, f"{name}_opt", opt)
        self.batch_shapes = self.method.batch_shapes(spec, config)
        self._compiled: dict[str, Callable[..., Any]] = {}
        self.build()
        self.set_weights(weights)

    def build(self) -> None:
        """Backend hook, once the networks and optimisers exist: constants and compiled steps."""

    def layout(self, net: str) -> Layout:
        """The canonical layout of one network (relative names)."""
        return self.method.layout(self.spec, self.cfg, net)

    # -- the backend's steps, called with numpy batches ------------------------------------------
    def _prepare(self, batch: Batch, learn: bool) -> Batch:
        """Method hook: the batch as the backend's steps take it (``learn``: for an update, not a probe)."""
        return batch

    def _tensors(self, batch: Batch) -> Any:
        """A numpy batch as the backend's compiled steps take it."""
        return self.ops.tensors(batch, self.batch_shapes, tuple(self.method.batch))

    def _run(self, step: str, batch: Batch) -> Any:
        """Backend step ``step`` (``_update_step``, ``_gradients_step``, ``_diagnostics_step``),
        compiled on first use for this learner's batch schema."""
        fn = self._compiled.get(step)
        if fn is None:
            fn = self._compiled[step] = self.ops.compile(getattr(self, step), self.batch_shapes)
        return fn(self._tensors(batch))

    def update(self, batch: Batch) -> dict[str, float]:
        """One update on a batch of numpy arrays; returns the method's metrics as floats."""
        return self.ops.metrics(self._run("_update_step", self._prepare(batch, learn=True)), self.method.metrics)

    def gradients(self, batch: Batch) -> Weights:
        """Gradients of every loss at the current weights under canonical names, plus
        ``loss/<name>`` for each loss (for parity)."""
        losses, grads = self._run("_gradients_step", self._prepare(batch, learn=False))
        out: Weights = {}
        for net, gs in grads.items():
            for k, g in zip(self.nets[net].canonical(), gs):
                out[f"{net}/{k}"] = self.ops.numpy(g).reshape(self.shapes[f"{net}/{k}"])
        out.update({f"loss/{k}": np.array(float(self.ops.numpy(v))) for k, v in losses.items()})
        return out

    def diagnostics(self, batch: Batch) -> dict[str, np.ndarray]:
        """The method's intermediate quantities at the current weights (``method.diagnostics``)."""
        if not self.method.diagnostics:
            return {}
        out = self._run("_diagnostics_step", self._prepare(batch, learn=False))
        return {k: self.ops.numpy(out[k]) for k in self.method.diagnostics}

    # -- weights and optimiser state -------------------------------------------------------------
    def _read(self, param: Any) -> np.ndarray:
        return self.ops.read(param)

    def _write(self, param: Any, value: np.ndarray) -> None:
        self.ops.write(param, value)

    def get_weights(self) -> Weights:
        return {f"{n}/{k}": self._read(p).reshape(self.shapes[f"{n}/{k}"]).copy()
                for n, net in self.nets.items() for k, p in net.canonical().items()}

    def set_weights(self, weights: Weights) -> None:
        check_weights(self.shapes, weights, f"{type(self).__name__}({self.backend}).set_weights")
        for n, net in self.nets.items():
            for k, p in net.canonical().items():
                self._write(p, np.asarray(weights[f"{n}/{k}"], np.float32).reshape(tuple(p.shape)))

    def copy_weights(self, source: str, target: str) -> None:
        """Copy network ``source``'s weights into network ``target`` (same layout), e.g. a target network."""
        for src, dst in zip(self.nets[source].canonical().values(), self.nets[target].canonical().values()):
            self._write(dst, self._read(src).reshape(tuple(dst.shape)))

    def _opt_names(self, net: str) -> tuple[list[str], list[tuple[int, ...]]]:
        names = [f"{net}/{k}" for k in self.nets[net].canonical()]
        return names, [self.shapes[n] for n in names]

    def set_lr_scale(self, scale: float) -> None:
        """Set every optimiser's learning rate to ``scale`` times its configured rate (an lr
        schedule; the compiled steps read the rate, so nothing is recompiled)."""
        for net, lr in self.method.learning_rates(self.cfg).items():
            self.optimizers[net].set_lr(lr * float(scale))

    def get_optimizer_state(self) -> Weights:
        out: Weights = {}
        for net, opt in self.optimizers.items():
            names, shapes = self._opt_names(net)
            out.update({f"opt/{net}/{k}" if k == "step" else f"opt/{k}": v
                        for k, v in opt.get_state(names, shapes).items()})
        return out

    def set_optimizer_state(self, state: Weights) -> None:
        for net, opt in self.optimizers.items():
            names, _ = self._opt_names(net)
            sub = {k[len("opt/"):]: v for k, v in state.items() if k.startswith(f"opt/{net}/")}
            sub["step"] = state[f"opt/{net}/step"]
            opt.set_state(names, sub)
