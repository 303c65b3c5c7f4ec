"""The backend-neutral training loops.

:class:`Trainer` holds what every loop shares: building env, learner and run folder, logging
(JSONL, TensorBoard), greedy evaluation, GIFs, atomic checkpoints and exact resume, graceful
Ctrl-C and SIGTERM (:class:`Preempted`), the run folder's lock, non-finite guards and the time
breakdown. Its two loops differ only in how they collect and when they update:

* :class:`OffPolicyTrainer` (MADDPG): collect -> numpy replay -> update on a step schedule;
* :class:`OnPolicyTrainer` (COMA, CommNet): collect whole episodes -> numpy episode buffer ->
  one update per ``batch_episodes`` completed episodes, then the buffer is emptied.

The learner is the only backend-specific object.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from xmarl import registry
from xmarl.buffers import EpisodeBuffer, ReplayBuffer
from xmarl.buffers.replay import available_memory, row_bytes
from xmarl.config import save_config
from xmarl.core.interfaces import Learner, Policy, mask_actions
from xmarl.core.method import MethodCore, MethodSpec
from xmarl.envs import VectorEnvBase, make_env
from xmarl.envs.snapshot import restore, snapshot
from xmarl.errors import ConfigError, EnvError, TrainingError, XmarlError
from xmarl.training.checkpoint import (
    CHECKPOINTS,
    REPLAY,
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
    replay_chunk,
    save_checkpoint,
)
from xmarl.training.groups import AgentGroups, GroupPolicy, sample_available
from xmarl.training.logger import MetricsLogger

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
    learner: Learner | None = field(default=None, repr=False)

    def summary(self) -> str:
        m = self.final_metrics
        lines = [
            f"xmarl run finished: {m.get('steps', 0):.0f} steps in {m.get('wall_time', 0):.0f}s "
            f"({m.get('steps_per_sec', 0):.0f} env-steps/s)",
            f"  final greedy eval return (per agent): {m.get('eval_return', float('nan')):.3f}",
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


def reset_state(state: Any, done: np.ndarray) -> Any:
    """Zero a recurrent policy's state ``[E, ...]`` in the envs whose episode ended."""
    if state is not None and done.any():
        state = np.array(state)
        state[done] = 0.0
    return state


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
    updates: int = 0
    next_update: int = 0
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
    """What every training loop shares (see the module docstring). Subclasses build their
    buffer (:meth:`_make_buffer`) and implement one collection step (:meth:`_collect`), which
    advances ``state.step`` by ``num_envs`` and runs the updates that are due.

    ``resume`` (a run folder or checkpoint folder) continues that run from its newest
    checkpoint: weights, optimiser moments, buffer, environments mid-episode, recurrent
    policy state, RNG and loop counters are restored, so the resumed run produces the same
    metrics as an uninterrupted one with the same seed. A damaged newest checkpoint of a run
    folder is skipped for the newest intact one (said on stderr); a run folder that another
    live process trains is refused.

    A new run takes its folder at construction (``<out_dir>/<name>``, or ``<name>-1``, ... when
    taken, atomically), so runs started at once never share one.
    """

    def __init__(self, cfg: BaseModel, resume: str | os.PathLike[str] | None = None) -> None:
        self.cfg = cfg
        self.mcfg = getattr(cfg, cfg.method)  # the method's config section
        spec: MethodSpec = registry.get("method", cfg.method)
        self.core: MethodCore = spec.core
        registry.get("runtime", "configure", cfg.backend)(cfg.train.threads)
        self.env = make_env(cfg.env, cfg.train.num_envs, **cfg.env_kwargs)
        if self.env.spec.action_kind not in spec.action_kinds:
            raise EnvError(
                f"{cfg.method} needs {' or '.join(spec.action_kinds)} actions, but env '{cfg.env}' has "
                f"{self.env.spec.action_kind} actions; pick another env or method"
            )
        self.eval_env = make_env(cfg.env, cfg.train.eval_episodes, **cfg.env_kwargs)
        aspec = self.env.spec
        weights = self.core.init_weights(aspec, self.mcfg, cfg.seed)
        self.learner: Learner = registry.get("learner", cfg.method, cfg.backend)(aspec, self.mcfg, weights)
        self.groups = AgentGroups.resolve(cfg.groups, self.env.agents)
        if self.groups.heuristic.any() and self.env.heuristic_actions() is None:
            raise ConfigError(f"env '{cfg.env}' ships no heuristic policy; give its groups policy random, frozen "
                              "or learn")
        # frozen groups act with the greedy policy of a learner built from their checkpoint's weights
        self._frozen: dict[str, Policy] = {
            g: registry.get("learner", cfg.method, cfg.backend)(aspec, self.mcfg, load_weights(path)).policy
            for g, path in self.groups.frozen.items()}
        self.buffer = self._make_buffer()
        self._actor = self.acting(self.env)  # collection passes its rng: the policy's own is not used
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5452]))
        t = cfg.train
        self.state = LoopState(next_update=self._first_update(), next_log=t.log_interval,
                               next_eval=t.eval_interval, next_ckpt=t.checkpoint_interval)
        self.obs: np.ndarray | None = None
        self.carry: Any = None  # the policy's recurrent state between steps (None for feed-forward)
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

    def acting(self, env: VectorEnvBase, seed: int = 0) -> Policy:
        """The policy that acts in ``env``: the learner's, with fixed groups' agents acting at
        random (drawn from the ``rng`` that ``act`` gets, else from one seeded with ``seed``)."""
        policy = self.learner.policy
        if not self.groups.fixed:
            return policy
        return GroupPolicy(policy, self.groups, lambda rng, avail: sample_available(env, rng, avail),
                           np.random.default_rng(seed), self._frozen, env.heuristic_actions)

    def evaluate(self) -> dict[str, float]:
        """Greedy evaluation on the eval env: ``eval_return`` (per agent), per group, per agent
        (``eval_agent/<name>``), ``eval_length`` and the env's success measures (``eval_<name>``)."""
        seed = self.cfg.seed + EVAL_SEED_OFFSET
        returns, lengths, measures = episode_stats(self.acting(self.eval_env, seed), self.eval_env, seed=seed)
        return {**self.groups.metrics(returns, lengths, self.eval_env.agents),
                **{f"eval_{k}": float(v.mean()) for k, v in measures.items()}}

    # -- what a loop defines ---------------------------------------------------------------
    def _make_buffer(self) -> Any:
        raise NotImplementedError

    def _first_update(self) -> int:
        return 0

    def _collect(self, clock: Stopwatch) -> None:
        raise NotImplementedError

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
    def _checkpoint(self) -> Path:
        st = self.state
        if self._saved is not None and self._saved[0] == st.step:  # nothing changed since
            return self._saved[1]
        weights = self.learner.get_weights()
        bad = next((k for k, v in weights.items() if not np.all(np.isfinite(v))), None)
        if bad is not None:
            raise TrainingError(f"step {st.step}: weight '{bad}' is not finite; kept the last good checkpoint "
                                f"in {self.run_dir / CHECKPOINTS}")
        trainer_state = {"step": st.step, "method": self.cfg.method, "backend": self.cfg.backend,
                         "env": self.cfg.env, "seed": self.cfg.seed, "loop": asdict(st),
                         "rng": self.rng.bit_generator.state}
        blobs = {}
        try:
            blobs["env.pkl"] = snapshot((self.env, self.obs, self.carry))
        except (TypeError, AttributeError, pickle.PicklingError) as exc:
            if not self._warned_snapshot:
                print(f"xmarl: warning: env '{self.cfg.env}' cannot be snapshotted ({exc}); a resumed run will "
                      "restart its episodes, so it will not replay the original exactly", file=sys.stderr)
                self._warned_snapshot = True
        trainer_state["env_snapshot"] = "env.pkl" in blobs  # a missing env.pkl is then a damaged checkpoint
        arrays, replay = self._buffer_checkpoint()
        folder = save_checkpoint(
            self.run_dir, st.step,
            {"weights.npz": weights, "optimizer.npz": self.learner.get_optimizer_state(), **arrays}, blobs,
            trainer_state, replay=replay)
        if replay is not None:
            self._saved_buffer(replay)
        self._saved = (st.step, folder)
        return folder

    def _buffer_checkpoint(self) -> tuple[dict[str, dict[str, np.ndarray]], ReplayChunks | None]:
        """The buffer's part of a checkpoint: whole, as ``buffer.npz`` (a loop may store it by chunks)."""
        return {"buffer.npz": self.buffer.state_dict()}, None

    def _saved_buffer(self, replay: ReplayChunks) -> None:
        """Called once a checkpoint holding ``replay`` is complete."""

    def _load_buffer(self, folder: Path) -> None:
        state = load_arrays(folder, "buffer.npz")
        try:
            self.buffer.load_state_dict(state)
        except (ValueError, KeyError, IndexError) as exc:
            raise damaged(folder / "buffer.npz", exc) from exc

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
        set, except the buffer, which is read last, in place."""
        cfg = self.cfg
        saved = load_json(folder, "trainer.json")
        try:
            saved_run = (saved["method"], saved["backend"], saved["env"])
            loop = dict(saved["loop"])
            loop["curve"] = [tuple(c) for c in loop["curve"]]
            state = LoopState(**loop)
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
        for fname, load, data in (("weights.npz", self.learner.set_weights, weights),
                                  ("optimizer.npz", self.learner.set_optimizer_state, optimizer)):
            try:
                load(data)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise damaged(folder / fname, exc) from exc
        self._load_buffer(folder)
        if snap is not None:
            self.env, self.obs, self.carry = snap
            self._actor = self.acting(self.env)
        else:  # the env could not be snapshotted: start fresh episodes, deterministically
            self.obs = self.env.reset(seed=cfg.seed + step)
            self.carry = None
            self.buffer.drop_in_progress()
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
        save_config(cfg, config_path)
        logger = MetricsLogger(self.run_dir, tensorboard=t.tensorboard)
        learner = self.learner
        clock = Stopwatch()
        start, start_step = time.perf_counter(), st.step
        bar = tqdm(total=t.steps, initial=st.step, unit="step", disable=not t.progress, dynamic_ncols=True,
                   file=sys.stderr)
        with _GracefulInterrupt() as interrupt:
            while st.step < t.steps:
                before = st.step
                self._collect(clock)
                bar.update(st.step - before)
                if st.step >= st.next_eval or st.step >= t.steps:
                    with clock("eval"):
                        st.eval_metrics = self.evaluate()
                        st.eval_return = st.eval_metrics["eval_return"]
                        st.curve.append((st.step, st.eval_return))
                        logger.log({"step": st.step, **st.eval_metrics})
                        st.next_eval += t.eval_interval
                        if t.gif_every and len(st.curve) % t.gif_every == 0:
                            self._save_gif(st.step)
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
        logger.close()
        result = {"final_metrics": final, "curve": st.curve}
        atomic_write_text(self.run_dir / "result.json", json.dumps(result, indent=1))
        return RunResult(self.run_dir, config_path, logger.path, ckpt, logger.tb_dir, final, list(st.curve), learner)

    def _save_gif(self, step: int) -> Path:
        from xmarl.training.render import episode_frames, make_render_env, write_gif

        if self._render_env is None:
            self._render_env = make_render_env(self.cfg.env, self.cfg.env_kwargs)
        frames = episode_frames(self.learner.policy, self._render_env, seed=self.cfg.seed + EVAL_SEED_OFFSET)
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


class OffPolicyTrainer(Trainer):
    """Runs an off-policy method (MADDPG) for ``train.steps`` environment steps: uniform
    warm-up actions, then exploring actions into a replay buffer, with ``updates_per_round``
    updates every ``update_every`` steps."""

    def _make_buffer(self) -> ReplayBuffer:
        s = self.env.spec
        self._replay_files: list[str | None] = []  # the replay chunk files of the last checkpoint
        rows = min(self.mcfg.buffer_size, self.cfg.train.steps)
        need, have = rows * row_bytes(s.n_agents, s.obs_dim, s.act_dim), available_memory()
        if have is not None and need > 0.9 * have:  # numpy allocates lazily: the kernel would kill the run later
            raise ConfigError(f"the replay of {rows} transitions needs {need / 2**30:.1f} GiB, more than the "
                              f"{have / 2**30:.1f} GiB of memory available; lower {self.cfg.method}.buffer_size")
        return ReplayBuffer(rows, s.n_agents, s.obs_dim, s.act_dim)

    def _first_update(self) -> int:
        return max(self.mcfg.warmup_steps, self.mcfg.batch_size)

    # the replay is stored once per run folder, by chunks (see xmarl.training.checkpoint)
    def _buffer_checkpoint(self) -> tuple[dict[str, dict[str, np.ndarray]], ReplayChunks | None]:
        b = self.buffer
        return {}, ReplayChunks(b.chunk_rows, b.pos, b.size, self._replay_files,
                                {j: b.chunk(j) for j in b.changed_chunks()})

    def _saved_buffer(self, replay: ReplayChunks) -> None:
        self._replay_files = replay.files
        self.buffer.mark_saved()

    def _load_buffer(self, folder: Path) -> None:
        if not (folder / "replay.json").is_file():  # a checkpoint that holds the buffer whole
            super()._load_buffer(folder)
            self._replay_files = []
            return
        meta = load_json(folder, "replay.json")
        try:
            rows, pos, size, files = int(meta["chunk_rows"]), int(meta["pos"]), int(meta["size"]), list(meta["files"])
            if rows < 1 or len(files) != -(-size // rows):
                raise ValueError(f"{len(files)} chunk files for {size} rows of {rows}")
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(folder / "replay.json", f"{type(exc).__name__}: {exc}") from exc
        for j, fname in enumerate(files):
            chunk = replay_chunk(self.run_dir, fname)
            try:
                n, expected = len(chunk["obs"]), min(rows, size - j * rows)
                if n != expected:
                    raise ValueError(f"{n} rows, expected {expected}")
                self.buffer.load_chunk(j * rows, chunk)
            except (KeyError, ValueError) as exc:
                raise damaged(self.run_dir / REPLAY / fname, exc) from exc
        try:
            self.buffer.set_position(pos, size)
        except ValueError as exc:
            raise damaged(folder / "replay.json", exc) from exc
        if rows == self.buffer.chunk_rows:
            self._replay_files = files
            self.buffer.mark_saved()
        else:  # another buffer size: the next checkpoint writes it anew
            self._replay_files = []
            self.buffer.mark_unsaved()

    def _collect(self, clock: Stopwatch) -> None:
        m, st, env, rng = self.mcfg, self.state, self.env, self.rng
        extra = _env_kwargs(env)
        alive = extra.get("agent_mask")
        with clock("act"):
            if st.step < m.warmup_steps:
                actions = mask_actions(env.sample_actions(rng), alive)
            else:
                actions, _ = self._actor.act(self.obs, explore=True, rng=rng,
                                             noise_scale=self.core.exploration(m, st.step), **extra)
        with clock("env"):
            next_obs, final_obs, rew, term, _ = env.step(actions)
        _check_finite(st.step + env.num_envs, self.cfg.env, env.agents, final_obs=final_obs, reward=rew)
        stored = mask_actions(self.core.stored_actions(env.spec, actions), alive)  # zero rows for agents gone
        self.buffer.add(self.obs, stored, rew, final_obs, term, alive, env.final_alive())
        self.obs = next_obs
        st.step += env.num_envs
        while st.step >= st.next_update:
            for _ in range(m.updates_per_round):
                batch = self.core.prepare_batch(env.spec, m, self.buffer.sample(m.batch_size, rng), rng, st.step)
                with clock("update"):
                    metrics = self.learner.update(batch)
                self._record_update(metrics)
            st.next_update += m.update_every


class OnPolicyTrainer(Trainer):
    """Runs an on-policy method (COMA, CommNet) for ``train.steps`` environment steps.

    Every step, each env's agents act from the (recurrent) policy with the method's
    exploration (``core.exploration(cfg, step)``) over the available actions; ended episodes
    get the policy's action at their final observation too (targets bootstrap from it) and
    move to the episode buffer. Once ``batch_episodes`` episodes are complete they become one
    batch (``core.prepare_batch``) for ``core.update_epochs(cfg)`` calls of ``learner.update``,
    each followed by ``core.after_update`` (e.g. COMA's target-critic copy).
    """

    def _make_buffer(self) -> EpisodeBuffer:
        s = self.env.spec
        return EpisodeBuffer(self.env.num_envs, s.n_agents, s.obs_dim, s.act_dim)

    def _collect(self, clock: Stopwatch) -> None:
        m, st, env, rng, policy = self.mcfg, self.state, self.env, self.rng, self._actor
        E, spec = env.num_envs, env.spec
        eps = self.core.exploration(m, st.step)
        with clock("act"):
            extra = _env_kwargs(env)
            if "avail" not in extra:
                extra["avail"] = np.broadcast_to(spec.act_mask, (E,) + spec.act_mask.shape)
            avail, alive = extra["avail"], extra.get("agent_mask")
            actions, carry = policy.act(self.obs, self.carry, explore=True, rng=rng, noise_scale=eps, **extra)
        with clock("env"):
            next_obs, final_obs, rew, term, done = env.step(actions)
        _check_finite(st.step + E, self.cfg.env, env.agents, final_obs=final_obs, reward=rew)
        # an episode terminates when its env says so for every agent still in it (agents that left
        # before terminated then)
        self.buffer.add(self.obs, actions, avail, rew, (done & term.any(1)).astype(np.float32), alive)
        if done.any():
            final_alive = env.final_alive()
            with clock("act"):  # the action at each final observation, for bootstrapped targets
                final_actions, _ = policy.act(final_obs, carry, explore=True, rng=rng, noise_scale=eps,
                                              **({} if final_alive is None else {"agent_mask": final_alive}))
            self.buffer.finish(done, final_obs, final_actions, np.broadcast_to(spec.act_mask, avail.shape),
                               final_alive)
        self.obs, self.carry = next_obs, reset_state(carry, done)
        st.step += E
        if len(self.buffer) >= m.batch_episodes:
            batch = self.core.prepare_batch(spec, m, self.buffer.take(), rng, st.step)
            for _ in range(self.core.update_epochs(m)):
                with clock("update"):
                    metrics = self.learner.update(batch)
                self._record_update(metrics)
                self.core.after_update(self.learner, m, st.updates)


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
