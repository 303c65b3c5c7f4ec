"""The backend-neutral training loop.

:class:`Trainer` builds the env, the learners and the run folder, and does what every method
shares: stepping the env, logging (JSONL, TensorBoard), greedy evaluation, GIFs, atomic
checkpoints and exact resume, graceful Ctrl-C and SIGTERM (:class:`Preempted`), the run folder's
lock, non-finite guards and the time breakdown. What differs between methods is in its parts
(:mod:`xmarl.training.parts`), one per learner:

* off-policy (MADDPG): collect -> numpy replay -> update on a step schedule;
* on-policy (COMA, CommNet): collect whole episodes -> numpy episode buffer -> one update per
  ``batch_episodes`` completed episodes, then the buffer is emptied.

A run has one learner over every agent, or one per learning agent group, each of its group's
method (:mod:`xmarl.training.groups`); they act and learn in the same env steps. The learners are
the only backend-specific objects.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from xmarl import registry
from xmarl.config import save_config
from xmarl.core.device import select_device
from xmarl.core.interfaces import Learner, Policy, mask_actions
from xmarl.core.method import MethodSpec
from xmarl.envs import VectorEnvBase, make_env, run_env
from xmarl.envs.snapshot import restore, snapshot
from xmarl.envs.workers import EnvWorkerError, WorkerVectorEnv
from xmarl.errors import ConfigError, EnvError, TrainingError, XmarlError
from xmarl.training.checkpoint import (
    CHECKPOINTS,
    ReplayChunks,
    acquire_lock,
    atomic_write_text,
    checkpoint_candidates,
    claim_run_dir,
    damaged,
    load_arrays,
    load_json,
    load_weights,
    release_lock,
    save_checkpoint,
)
from xmarl.training.groups import (
    AgentGroups,
    FixedGroups,
    GroupPolicy,
    empty_actions,
    frozen_policies,
    joint_weights,
    learner_slots,
    part_weights,
    reset_state,
    sample_available,
)
from xmarl.training.logger import MetricsLogger, check_loggers
from xmarl.training.parts import PARTS, Part

#: evaluation episodes (and GIFs) use seed + this, apart from the training envs' seeds
EVAL_SEED_OFFSET = 1_000_003


@dataclass
class RunResult:
    """What a finished run leaves: where its files are, its final metrics and its curve."""

    run_dir: Path
    config_path: Path
    metrics_path: Path
    checkpoint_dir: Path
    tensorboard_dir: Path | None
    final_metrics: dict[str, float]
    curve: list[tuple[int, float]] = field(default_factory=list)  # (env step, greedy eval return)
    learner: Learner | None = field(default=None, repr=False)  # the learner of every agent (None: one per group)
    learners: dict[str, Learner] = field(default_factory=dict, repr=False)  # {group: learner} with one per group
    device: str = "cpu"  # where the learners trained (canonical name, e.g. "gpu:0")
    env: str = ""  # the config's env, e.g. mpe/simple_spread_v3
    run_env: str = ""  # the env that stepped: env itself, or its transition-identical twin (env_impl: auto)

    def summary(self) -> str:
        m = self.final_metrics
        lines = [
            f"xmarl run finished: {m.get('steps', 0):.0f} steps in {m.get('wall_time', 0):.0f}s "
            f"({m.get('steps_per_sec', 0):.0f} env-steps/s, on {self.device})",
            f"  final greedy eval return (per agent): {m.get('eval_return', float('nan')):.3f}",
            *([f"  env:         {self.env}, run as its transition-identical twin {self.run_env} "
               "(env_impl: reference runs the original)"] if self.run_env and self.run_env != self.env else []),
            *(f"    group {k.split('/', 1)[1]}: {v:.3f}" for k, v in m.items() if k.startswith("eval_return/")),
            f"  results:     {self.run_dir}",
            f"  config:      {self.config_path}",
            f"  metrics:     {self.metrics_path}",
            f"  checkpoint:  {self.checkpoint_dir}",
        ]
        if self.tensorboard_dir is not None:
            lines.append(f"  tensorboard: tensorboard --logdir {self.tensorboard_dir}")
        return "\n".join(lines)


def episode_returns(policy: Policy, env: VectorEnvBase, seed: int) -> np.ndarray:
    """Greedy returns ``[E, A]`` (episode sums per agent), one episode per env copy. ``policy``
    is anything with the :meth:`Policy.act` signature."""
    return episode_stats(policy, env, seed)[0]


def episode_stats(policy: Policy, env: VectorEnvBase, seed: int
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Greedy returns ``[E, A]`` (episode sums per agent), lengths ``[E]`` and the env's success
    measures summed over each episode (``{name: [E]}``, see :meth:`VectorEnvBase.step_measures`),
    one episode per env copy."""
    obs = env.reset(seed=seed)
    E = env.num_envs
    finished = np.zeros(E, bool)
    acc = np.zeros((E, env.spec.n_agents))
    lengths = np.zeros(E, np.int64)
    measures: dict[str, np.ndarray] = {}
    state = None
    while not finished.all():
        actions, state = policy.act(obs, state, explore=False, **_env_kwargs(env))
        obs, _, rew, _, done = env.step(actions)
        state = reset_state(state, done)
        acc[~finished] += rew[~finished]
        lengths[~finished] += 1
        for k, v in env.step_measures().items():
            measures.setdefault(k, np.zeros(E))[~finished] += np.asarray(v, np.float64)[~finished]
        finished |= done
    return acc, lengths, measures


def _env_kwargs(env: VectorEnvBase) -> dict[str, np.ndarray]:
    """What the env reports beside the observations, as :meth:`Policy.act` takes it: ``avail``
    ``[E, A, n]`` (available actions) and ``agent_mask`` ``[E, A]`` (agents in the episode), each
    only when the env reports it."""
    out = {"avail": env.avail_actions(), "agent_mask": env.alive()}
    return {k: v for k, v in out.items() if v is not None}


def is_timing(key: str) -> bool:
    """Whether a metrics entry is a wall-clock measurement (differs between identical runs)."""
    return key in ("steps_per_sec", "wall_time") or key.startswith("time_")


class Stopwatch:
    """Accumulated wall time per phase: ``with clock("env"): ...``; ``clock.totals`` in seconds."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {k: 0.0 for k in ("env", "act", "update", "eval", "checkpoint")}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.totals[phase] += time.perf_counter() - t0


@dataclass
class LoopState:
    """Everything the loop carries between iterations (saved in each checkpoint)."""

    step: int = 0
    updates: int = 0  # of every learner (each part counts its own too)
    next_log: int = 0
    next_eval: int = 0
    next_ckpt: int = 0
    eval_return: float = float("nan")
    eval_metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation's, per group too
    losses: dict[str, list[float]] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)


#: the signals that stop training gracefully: Ctrl-C, and what schedulers and ``kill`` send
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Preempted(KeyboardInterrupt):
    """Training was stopped by a signal (Ctrl-C's SIGINT, or SIGTERM from a scheduler or
    ``kill``) after finishing its iteration and writing a checkpoint. ``signum`` is the signal
    (``xmarl run`` exits with ``128 + signum``: 130, 143), ``checkpoint`` the folder written.
    A KeyboardInterrupt, so code that handles Ctrl-C handles it too."""

    def __init__(self, signum: int, checkpoint: Path | None = None) -> None:
        super().__init__(signum, checkpoint)
        self.signum = signum
        self.checkpoint = checkpoint

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}" + (
            f"; checkpoint {self.checkpoint}" if self.checkpoint else "")


_stop_request: list[int] = []  # request_stop's signal, until a training loop takes it


def request_stop(signum: int = signal.SIGTERM) -> None:
    """Ask the training loop of this process (now, or the next one to start) to stop as on a
    first ``signum``: finish the iteration, checkpoint and raise :class:`Preempted`. Callable
    from any thread, and as often as wanted: it never counts as a second signal (the workers
    of ``xmarl compare`` use it when their parent is stopped)."""
    if not _stop_request:
        _stop_request.append(int(signum))


class _GracefulInterrupt:
    """While active, the first SIGINT or SIGTERM only records the signal (the loop checkpoints
    at the end of the iteration and raises :class:`Preempted`); the previous handlers are then
    back, so a second signal of either kind acts at once (Ctrl-C raises KeyboardInterrupt,
    SIGTERM ends the process)."""

    def __init__(self) -> None:
        self._signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def signum(self) -> int | None:
        """The signal that asked the loop to stop (or :func:`request_stop`'s, which counts as a
        first signal), else None."""
        if self._signum is None and _stop_request:
            self._signum = _stop_request.pop()
            self._restore()
        return self._signum

    def _handler(self, signum: int, frame: Any) -> None:
        if self._signum is None:
            self._signum = signum
        self._restore()

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def __enter__(self) -> _GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handler) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()


class Trainer:
    """The training loop (see the module docstring). Each iteration steps ``num_envs`` env copies
    once: every part acts for its agents, the fixed groups' agents act, the env steps, and every
    part stores its side of the step and runs the updates that are due.

    ``on_evaluation(step, metrics)``, when given, is called after each evaluation (a tuner's
    report; an exception it raises ends training, as any other).

    ``resume`` (a run folder or checkpoint folder) continues that run from its newest
    checkpoint: weights, optimiser moments, buffers, environments mid-episode, recurrent
    policy state, RNG and loop counters are restored, so the resumed run produces the same
    metrics as an uninterrupted one with the same seed. A damaged newest checkpoint of a run
    folder is skipped for the newest intact one (said on stderr); a run folder that another
    live process trains is refused.

    A new run takes its folder at construction (``<out_dir>/<name>``, or ``<name>-1``, ... when
    taken, atomically), so runs started at once never share one.
    """

    def __init__(self, cfg: BaseModel, resume: str | os.PathLike[str] | None = None,
                 on_evaluation: Callable[[int, dict[str, float]], None] | None = None) -> None:
        self.cfg = cfg
        self.on_evaluation = on_evaluation  # called with (env step, metrics) after each evaluation (e.g. Ray Tune)
        self.mcfg = getattr(cfg, cfg.method)  # the run's method section
        self.core = registry.get("method", cfg.method).core  # and its core
        registry.get("runtime", "configure", cfg.backend)(cfg.train.threads)
        self.device = select_device(cfg.backend, cfg.device)  # before any learner: where their tensors live
        self.run_env = run_env(cfg.env, cfg.env_impl, cfg.env_kwargs)  # e.g. mpe-fast/<task> for mpe/<task>
        self.env = make_env(self.run_env, cfg.train.num_envs, cfg.train.env_workers, **cfg.env_kwargs)
        self.eval_env = make_env(self.run_env, cfg.train.eval_episodes, **cfg.env_kwargs)
        aspec = self.env.spec
        check_loggers(list(cfg.train.loggers), cfg.train.tensorboard)  # an unknown or missing tracker: before any file
        self.groups = AgentGroups.resolve(cfg.groups, self.env.agents)
        if self.groups.heuristic.any() and self.env.heuristic_actions() is None:
            raise ConfigError(f"env '{cfg.env}' ships no heuristic policy; give its groups policy random, frozen "
                              "or learn")
        self.parts: list[Part] = []
        for k, ls in enumerate(learner_slots(cfg, self.groups, aspec)):
            spec: MethodSpec = registry.get("method", ls.method)
            if aspec.action_kind not in spec.action_kinds:
                who = f"group '{ls.name}' learns with {ls.method}, which" if ls.name else f"{ls.method}"
                raise EnvError(f"{who} needs {' or '.join(spec.action_kinds)} actions, but env '{cfg.env}' has "
                               f"{aspec.action_kind} actions; pick another env or method")
            seed = cfg.seed if not ls.name else int(np.random.SeedSequence([cfg.seed, k]).generate_state(1)[0])
            weights = spec.core.init_weights(ls.slots.spec, ls.config, seed)
            learner = registry.get("learner", ls.method, cfg.backend)(ls.slots.spec, ls.config, weights)
            self.parts.append(PARTS[spec.trainer](ls.name, spec.core, ls.config, ls.slots, learner,
                                                  cfg.train.num_envs, cfg.train.steps, ls.method))
        # frozen groups act with the greedy policy of a learner built from their checkpoint's weights
        self._frozen = frozen_policies(cfg, self.groups, aspec, load_weights)
        self._fixed = self._fixed_groups(self.env)
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5452]))
        t = cfg.train
        self.state = LoopState(next_log=t.log_interval, next_eval=t.eval_interval, next_ckpt=t.checkpoint_interval)
        self.obs: np.ndarray | None = None
        self._warned_snapshot = False
        self._saved: tuple[int, Path] | None = None  # (step, folder) of the last checkpoint written
        self._render_env: VectorEnvBase | None = None
        self.resume_from: Path | None = None
        if resume is not None:
            candidates = checkpoint_candidates(resume)
            self.run_dir = candidates[0].parent.parent
            release_lock(acquire_lock(self.run_dir))  # a run another process is training: refuse now
            self.resume_from = self._load_newest_intact(candidates)
        else:
            self.obs = self.env.reset(seed=cfg.seed)  # a malformed env fails here, before any file is written
            name = cfg.name or f"{cfg.method}-{cfg.env.replace('/', '_')}-{cfg.backend}-s{cfg.seed}"
            self.run_dir = claim_run_dir(Path(cfg.out_dir) / name)

    # -- the learners -------------------------------------------------------------------------
    @property
    def learner(self) -> Learner:
        """The learner of every agent (a run with a learner per group has :attr:`learners`)."""
        if self.parts[0].name:
            raise AttributeError(f"this run trains a learner per group ({', '.join(self.learners)}); use "
                                 "trainer.learners[group]")
        return self.parts[0].learner

    @property
    def learners(self) -> dict[str, Learner]:
        """Every learner by name (``""``: the learner of every agent; else its group)."""
        return {p.name: p.learner for p in self.parts}

    @property
    def buffer(self) -> Any:
        """The buffer of the learner of every agent (a run with a learner per group: each part's)."""
        self.learner  # noqa: B018  (the same one-line error for a run with a learner per group)
        return self.parts[0].buffer

    @property
    def carry(self) -> Any:
        """The policies' recurrent state between steps: the one learner's, or a tuple of each part's."""
        return self.parts[0].carry if len(self.parts) == 1 else tuple(p.carry for p in self.parts)

    @carry.setter
    def carry(self, value: Any) -> None:
        values = [value] if len(self.parts) == 1 else list(value or [None] * len(self.parts))
        for part, v in zip(self.parts, values):
            part.carry = v

    def _fixed_groups(self, env: VectorEnvBase, seed: int = 0) -> FixedGroups:
        """How the fixed groups act in ``env``: random actions drawn from the ``rng`` given (else
        from one seeded with ``seed``), frozen policies, the env's heuristic."""
        return FixedGroups(self.groups, lambda rng, avail: sample_available(env, rng, avail),
                           np.random.default_rng(seed), self._frozen, env.heuristic_actions)

    def acting(self, env: VectorEnvBase, seed: int = 0) -> Policy:
        """The policy of every agent in ``env``: each learner's for its agents, the fixed groups'
        agents as their group says (random actions drawn from the ``rng`` that ``act`` gets, else
        from one seeded with ``seed``)."""
        return GroupPolicy([(p.slots, p.learner.policy) for p in self.parts], env.spec, self._fixed_groups(env, seed))

    def evaluate(self) -> dict[str, float]:
        """Greedy evaluation on the eval env: ``eval_return`` (per agent), per group, per agent
        (``eval_agent/<name>``), ``eval_length`` and the env's success measures (``eval_<name>``)."""
        seed = self.cfg.seed + EVAL_SEED_OFFSET
        returns, lengths, measures = episode_stats(self.acting(self.eval_env, seed), self.eval_env, seed=seed)
        return {**self.groups.metrics(returns, lengths, self.eval_env.agents),
                **{f"eval_{k}": float(v.mean()) for k, v in measures.items()}}

    # -- one iteration ---------------------------------------------------------------------
    def _joint(self, act: Any, obs: np.ndarray, rng: np.random.Generator, extra: dict[str, np.ndarray]) -> np.ndarray:
        """Every agent's actions: ``act(part)`` for each part's agents (None: that part needs none),
        then the fixed groups' agents; agents out of the episode act 0."""
        actions = empty_actions(self.env.spec, obs.shape[0])
        for part in self.parts:
            mine = act(part)
            if mine is None:
                continue
            if part.slots.idx is None:
                actions = np.array(mine)
            else:
                part.slots.put(actions, mine)
        actions = self._fixed.override(actions, obs, rng, extra.get("avail"), extra.get("agent_mask"))
        return mask_actions(actions, extra.get("agent_mask"))

    def _collect(self, clock: Stopwatch) -> None:
        """One env step of every copy, stored by every part, then each part's updates that are due."""
        st, env, rng, obs = self.state, self.env, self.rng, self.obs
        extra = _env_kwargs(env)
        with clock("act"):
            actions = self._joint(lambda p: p.act(obs, extra, rng, st.step, env.sample_actions), obs, rng, extra)
        with clock("env"):
            next_obs, final_obs, rew, term, done = env.step(actions)
        _check_finite(st.step + env.num_envs, self.cfg.env, env.agents, final_obs=final_obs, reward=rew)
        final_alive = env.final_alive()
        final_actions = None
        if done.any() and any(type(p).final_act is not Part.final_act for p in self.parts):
            with clock("act"):  # the actions at each final observation, for bootstrapped targets
                final_extra = {} if final_alive is None else {"agent_mask": final_alive}
                final_actions = self._joint(lambda p: p.final_act(final_obs, final_alive, rng), final_obs, rng,
                                            final_extra)
        for part in self.parts:
            part.store(obs, actions, rew, final_obs, term, done, extra, final_alive, final_actions)
        self.obs = next_obs
        st.step += env.num_envs
        for part in self.parts:
            part.learn(rng, st.step, clock, self._record_update)

    def _record_update(self, metrics: dict[str, float]) -> None:
        """Guard and accumulate one update's metrics."""
        st = self.state
        for k, v in metrics.items():
            if not np.isfinite(v):
                raise TrainingError(f"step {st.step}: {k} is {v}; kept the last good checkpoint in "
                                    f"{self.run_dir / CHECKPOINTS}")
            st.losses.setdefault(k, []).append(v)
        st.updates += 1

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self, env_snapshot: bool = True) -> Path:
        st = self.state
        if self._saved is not None and self._saved[0] == st.step:  # nothing changed since
            return self._saved[1]
        weights = joint_weights({p.name: p.learner.get_weights() for p in self.parts})
        bad = next((k for k, v in weights.items() if not np.all(np.isfinite(v))), None)
        if bad is not None:
            raise TrainingError(f"step {st.step}: weight '{bad}' is not finite; kept the last good checkpoint "
                                f"in {self.run_dir / CHECKPOINTS}")
        trainer_state = {"step": st.step, "method": self.cfg.method, "backend": self.cfg.backend,
                         "env": self.cfg.env, "seed": self.cfg.seed, "loop": asdict(st),
                         "parts": {p.name: p.state() for p in self.parts}, "rng": self.rng.bit_generator.state}
        blobs = {}
        try:
            if env_snapshot:
                blobs["env.pkl"] = snapshot((self.env, self.obs, self.carry))
        except (TypeError, AttributeError, pickle.PicklingError) as exc:
            if not self._warned_snapshot:
                print(f"xmarl: warning: env '{self.cfg.env}' cannot be snapshotted ({exc}); a resumed run will "
                      "restart its episodes, so it will not replay the original exactly", file=sys.stderr)
                self._warned_snapshot = True
        trainer_state["env_snapshot"] = "env.pkl" in blobs  # a missing env.pkl is then a damaged checkpoint
        arrays: dict[str, dict[str, np.ndarray]] = {}
        replays: dict[str, ReplayChunks] = {}
        for part in self.parts:
            more, replay = part.buffer_checkpoint()
            arrays.update(more)
            if replay is not None:
                replays[part.name] = replay
        optimizer = joint_weights({p.name: p.learner.get_optimizer_state() for p in self.parts})
        folder = save_checkpoint(self.run_dir, st.step, {"weights.npz": weights, "optimizer.npz": optimizer, **arrays},
                                 blobs, trainer_state, replay=replays)
        for part in self.parts:
            if part.name in replays:
                part.saved_buffer(replays[part.name])
        self._saved = (st.step, folder)
        return folder

    def _load_newest_intact(self, candidates: list[Path]) -> Path:
        """Load the first of ``candidates`` (newest first) that is intact and return it; each
        damaged one skipped is said on stderr. Raises the newest one's error when none loads."""
        errors: list[XmarlError] = []
        for folder in candidates:
            try:
                self._load(folder)
            except XmarlError as exc:
                errors.append(exc)
                continue
            for exc in errors:
                print(f"xmarl: warning: {exc}", file=sys.stderr)
            if errors:
                print(f"xmarl: resuming from the newest intact checkpoint, {folder}", file=sys.stderr)
            return folder
        raise errors[0]

    def _load(self, folder: Path) -> None:
        """Restore the run from checkpoint ``folder``; a one-line XmarlError naming the file that is
        missing, damaged or not this run's. Every file is read (and checked) before anything is
        set, except the buffers, which are read last, in place."""
        cfg = self.cfg
        saved = load_json(folder, "trainer.json")
        try:
            saved_run = (saved["method"], saved["backend"], saved["env"])
            loop = dict(saved["loop"])
            loop["curve"] = [tuple(c) for c in loop["curve"]]
            # checkpoints of a run with one learner, written before runs had parts, keep its schedule in the loop
            parts = saved.get("parts") or {"": {"updates": loop["updates"], "next_update": loop.get("next_update", 0)}}
            loop.pop("next_update", None)
            state = LoopState(**loop)
            if set(parts) != {p.name for p in self.parts}:
                raise ValueError(f"learners {sorted(parts)}, this run has {sorted(p.name for p in self.parts)}")
            rng = np.random.Generator(type(self.rng.bit_generator)())
            rng.bit_generator.state = saved["rng"]
            step = int(saved["step"])
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(folder / "trainer.json", f"{type(exc).__name__}: {exc}") from exc
        if saved_run != (cfg.method, cfg.backend, cfg.env):
            raise XmarlError(f"checkpoint {folder / 'trainer.json'} is {'/'.join(map(str, saved_run))}, not "
                             f"{cfg.method}/{cfg.backend}/{cfg.env}; resume it with its own method, backend and env")
        weights = load_arrays(folder, "weights.npz")
        optimizer = load_arrays(folder, "optimizer.npz")
        snap = None
        if saved.get("env_snapshot") and not (folder / "env.pkl").is_file():
            raise damaged(folder / "env.pkl", "missing")
        if (folder / "env.pkl").is_file():
            try:
                snap = restore((folder / "env.pkl").read_bytes())
            except Exception as exc:  # unpickling damaged bytes raises almost anything
                raise damaged(folder / "env.pkl", f"{type(exc).__name__}: {exc}") from exc
        for part in self.parts:
            for fname, load, data in (("weights.npz", part.learner.set_weights, weights),
                                      ("optimizer.npz", part.learner.set_optimizer_state, optimizer)):
                try:
                    load(part_weights(data, part.name))
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise damaged(folder / fname, exc) from exc
            try:
                part.load_state(parts[part.name])
            except (KeyError, TypeError, ValueError) as exc:
                raise damaged(folder / "trainer.json", f"{type(exc).__name__}: {exc}") from exc
        for part in self.parts:
            part.load_buffer(folder, self.run_dir)
        if snap is not None:
            if isinstance(self.env, WorkerVectorEnv):  # the fresh one's worker processes (closing an
                self.env.close()  # in-process env could shut down what the restored one shares, e.g. pygame)
            self.env, self.obs, self.carry = snap
            self._fixed = self._fixed_groups(self.env)
        else:  # the env could not be snapshotted: start fresh episodes, deterministically
            self.obs = self.env.reset(seed=cfg.seed + step)
            for part in self.parts:
                part.drop_in_progress()
        self.rng = rng
        self.state = state

    # -- the loop --------------------------------------------------------------------------
    def train(self) -> RunResult:
        """Run the loop to ``train.steps`` and return the :class:`RunResult`. The run folder is
        locked meanwhile (another process resuming it is refused). The first SIGINT or SIGTERM
        finishes the iteration, checkpoints and raises :class:`Preempted`; a checkpoint that
        cannot be written raises a one-line XmarlError and keeps the last good one."""
        lock = acquire_lock(self.run_dir)
        try:
            return self._train()
        finally:
            release_lock(lock)

    def _train(self) -> RunResult:
        cfg, t, st = self.cfg, self.cfg.train, self.state
        config_path = self.run_dir / "config.yaml"
        if self.resume_from is not None:
            _truncate_log(self.run_dir / "metrics.jsonl", st.step)
        save_config(cfg, config_path, None if self.run_env == cfg.env else
                    f"env {cfg.env} ran as its transition-identical twin {self.run_env} (env_impl: auto); "
                    "env_impl: reference runs the env's own package")
        logger = MetricsLogger(self.run_dir, t.tensorboard, list(t.loggers), cfg.model_dump(mode="json"))
        try:
            return self._loop(logger, config_path)
        except BaseException:  # a crash or a stop: the trackers record the run as ended there
            logger.close(failed=True)
            raise

    def _loop(self, logger: MetricsLogger, config_path: Path) -> RunResult:
        t, st = self.cfg.train, self.state
        clock = Stopwatch()
        start, start_step = time.perf_counter(), st.step
        bar = tqdm(total=t.steps, initial=st.step, unit="step", disable=not t.progress, dynamic_ncols=True,
                   file=sys.stderr)
        with _GracefulInterrupt() as interrupt:
            while st.step < t.steps:
                before = st.step
                try:
                    self._collect(clock)
                except EnvWorkerError as exc:  # the other workers' episodes are lost with it: keep the rest
                    bar.close()
                    folder = self._checkpoint(env_snapshot=False)
                    raise EnvWorkerError(f"{exc}; checkpoint {folder} (resume restarts the episodes)") from None
                bar.update(st.step - before)
                if st.step >= st.next_eval or st.step >= t.steps:
                    with clock("eval"):
                        st.eval_metrics = self.evaluate()
                        st.eval_return = st.eval_metrics["eval_return"]
                        st.curve.append((st.step, st.eval_return))
                        logger.log({"step": st.step, **st.eval_metrics})
                        st.next_eval += t.eval_interval
                        if self.on_evaluation is not None:
                            self.on_evaluation(st.step, dict(st.eval_metrics))
                        if t.gif_every and len(st.curve) % t.gif_every == 0:
                            logger.media("episode", self._save_gif(st.step), st.step)
                if st.step >= st.next_log or st.step >= t.steps:
                    rec = self._train_record(st, start, start_step, clock)
                    logger.log(rec)
                    bar.set_postfix(ret=f"{rec.get('train_return', float('nan')):.2f}",
                                    eval=f"{st.eval_return:.2f}", sps=f"{rec['steps_per_sec']:.0f}")
                    st.losses = {}
                    st.next_log += t.log_interval
                if st.step >= st.next_ckpt:
                    st.next_ckpt += t.checkpoint_interval  # first: a resumed run does not checkpoint again at once
                    with clock("checkpoint"):
                        self._checkpoint()
                signum = interrupt.signum
                if signum is not None:
                    bar.close()
                    folder = self._checkpoint()
                    logger.close()
                    print(f"\ninterrupted ({signal.Signals(signum).name}) at step {st.step}; resume with: xmarl run "
                          f"--resume {self.run_dir} (checkpoint {folder})", file=sys.stderr)
                    raise Preempted(signum, folder)
        bar.close()
        with clock("checkpoint"):
            ckpt = self._checkpoint()
        wall = time.perf_counter() - start
        final = {"steps": float(st.step), "updates": float(st.updates), **st.eval_metrics,
                 "eval_return": st.eval_return, "wall_time": wall,
                 "steps_per_sec": (st.step - start_step) / max(wall, 1e-9)}
        final.update({f"time_{k}": v for k, v in clock.totals.items()})
        final["time_glue"] = wall - sum(clock.totals.values())
        recent = self.env.completed_returns[-100:]
        if recent:
            final["train_return"] = float(np.mean(recent))
        result = {"final_metrics": final, "curve": st.curve, "env": self.cfg.env, "run_env": self.run_env}
        atomic_write_text(self.run_dir / "result.json", json.dumps(result, indent=1))
        logger.close()
        joint = self.parts[0].learner if not self.parts[0].name else None
        return RunResult(self.run_dir, config_path, logger.path, ckpt, logger.tb_dir, final, list(st.curve), joint,
                         {} if joint is not None else self.learners, self.device, self.cfg.env, self.run_env)

    def _save_gif(self, step: int) -> Path:
        from xmarl.training.render import episode_frames, make_render_env, write_gif

        if self._render_env is None:
            self._render_env = make_render_env(self.run_env, self.cfg.env_kwargs)
        seed = self.cfg.seed + EVAL_SEED_OFFSET
        frames = episode_frames(self.acting(self._render_env, seed), self._render_env, seed=seed)
        return write_gif(frames, self.run_dir / "gifs" / f"step_{step:012d}.gif")

    def _train_record(self, st: LoopState, start: float, start_step: int, clock: Stopwatch) -> dict[str, Any]:
        wall = time.perf_counter() - start
        rec: dict[str, Any] = {"step": st.step, "updates": st.updates,
                               "steps_per_sec": (st.step - start_step) / max(wall, 1e-9), "wall_time": wall}
        rec.update({f"time_{k}": v for k, v in clock.totals.items()})  # cumulative, as wall_time
        recent = self.env.completed_returns[-20:]
        if recent:
            rec["train_return"] = float(np.mean(recent))
        rec.update({k: float(np.mean(v)) for k, v in st.losses.items()})
        return rec




def _check_finite(step: int, env: str, agents: list[str], **arrays: np.ndarray) -> None:
    """Stop on the first non-finite value, naming the step, the quantity and the agent."""
    for name, arr in arrays.items():
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            idx = tuple(bad[0])
            what = "observation" if name == "final_obs" else name
            raise TrainingError(f"step {step}: env '{env}' returned {what} {arr[idx]} for agent '{agents[idx[1]]}'; "
                                "the last good checkpoint is kept")


def _truncate_log(path: Path, step: int) -> None:
    """Drop records written after the checkpoint a run resumes from (and a line cut short by a
    killed process)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(line + "\n" for line in keep))
