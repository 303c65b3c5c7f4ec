"""The learners of a run, each with its buffer and update schedule: what differs between the
off-policy loop (MADDPG) and the on-policy loop (COMA, CommNet).

A run trains one :class:`Part` over every agent, or one per learning agent group over its agents
(:func:`xmarl.training.groups.learner_slots`). The trainer steps the env once for all of them:
each part acts for its agents (:meth:`Part.act`), the fixed groups' agents act after them, the env
steps, and each part stores its agents' side of the transition (:meth:`Part.store`) and runs the
updates that are due (:meth:`Part.learn`):

* :class:`OffPolicyPart`: uniform warm-up actions, then exploring actions into a numpy replay,
  with ``updates_per_round`` updates every ``update_every`` steps;
* :class:`OnPolicyPart`: exploring actions of the (recurrent) policy over the available actions;
  ended episodes get the policy's action at their final observation too (targets bootstrap from
  it) and move to the episode buffer; once ``batch_episodes`` episodes are complete they become
  one batch (``core.prepare_batch``) for ``core.update_epochs(cfg)`` calls of ``learner.update``,
  each followed by ``core.after_update`` (e.g. COMA's target-critic copy).

A part's files in a checkpoint carry its name (``buffer-<group>.npz``, ``replay-<group>.json``)
unless it is the run's only learner (name ``""``: ``buffer.npz``, ``replay.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xmarl.buffers import EpisodeBuffer, ReplayBuffer
from xmarl.buffers.replay import available_memory, row_bytes
from xmarl.core.interfaces import Learner, mask_actions
from xmarl.core.method import MethodCore
from xmarl.errors import ConfigError
from xmarl.training.checkpoint import REPLAY, ReplayChunks, damaged, load_arrays, load_json, replay_chunk, replay_json
from xmarl.training.groups import Slots, reset_state

#: ``record(metrics)``: the trainer's guard and accumulator of one update's metrics
Record = Callable[[dict[str, float]], None]


class Part:
    """One learner of a run (see the module docstring): ``name`` (``""`` for the learner of every
    agent, else its group), its method core and config, the agents it trains (``slots``)."""

    def __init__(self, name: str, core: MethodCore, cfg: Any, slots: Slots, learner: Learner, num_envs: int,
                 steps: int, method: str) -> None:
        self.name, self.core, self.cfg, self.slots, self.learner = name, core, cfg, slots, learner
        self.spec = slots.spec
        self.method = method
        self.updates = 0
        self.buffer = self._make_buffer(num_envs, steps)

    def file(self, base: str) -> str:
        """This part's name for checkpoint file ``base`` (``buffer.npz`` -> ``buffer-<group>.npz``)."""
        if not self.name:
            return base
        stem, dot, ext = base.partition(".")
        return f"{stem}-{self.name}{dot}{ext}"

    def metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """An update's metrics as the run logs them (``<name>/<group>`` for a group's learner)."""
        return metrics if not self.name else {f"{k}/{self.name}": v for k, v in metrics.items()}

    # -- what a loop defines ------------------------------------------------------------------
    def _make_buffer(self, num_envs: int, steps: int) -> Any:
        raise NotImplementedError

    def act(self, obs: np.ndarray, extra: dict[str, np.ndarray], rng: np.random.Generator, step: int,
            sample: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
        """This part's agents' actions at the env's observations ``obs`` after ``step`` env steps
        (``extra``: the env's ``avail``/``agent_mask``; ``sample``: the env's uniform actions)."""
        raise NotImplementedError

    def final_act(self, final_obs: np.ndarray, final_alive: np.ndarray | None,
                  rng: np.random.Generator) -> np.ndarray | None:
        """The actions at the final observations of episodes that just ended (None: not needed)."""
        return None

    def store(self, obs: np.ndarray, actions: np.ndarray, rew: np.ndarray, final_obs: np.ndarray, term: np.ndarray,
              done: np.ndarray, extra: dict[str, np.ndarray], final_alive: np.ndarray | None,
              final_actions: np.ndarray | None) -> None:
        """Store this part's agents' side of one env step (every array is the env's, all agents)."""
        raise NotImplementedError

    def learn(self, rng: np.random.Generator, step: int, clock: Any, record: Record) -> None:
        """Run the updates due after ``step`` env steps."""
        raise NotImplementedError

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The schedule's counters (saved in ``trainer.json``)."""
        return {"updates": self.updates}

    def load_state(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])

    @property
    def carry(self) -> Any:
        """The policy's recurrent state between steps (None for feed-forward or off-policy)."""
        return None

    @carry.setter
    def carry(self, value: Any) -> None:
        pass

    def buffer_checkpoint(self) -> tuple[dict[str, dict[str, np.ndarray]], ReplayChunks | None]:
        """The buffer's part of a checkpoint: whole, as ``buffer.npz`` (or stored by chunks)."""
        return {self.file("buffer.npz"): self.buffer.state_dict()}, None

    def saved_buffer(self, replay: ReplayChunks) -> None:
        """Called once a checkpoint holding ``replay`` is complete."""

    def load_buffer(self, folder: Path, run_dir: Path) -> None:
        state = load_arrays(folder, self.file("buffer.npz"))
        try:
            self.buffer.load_state_dict(state)
        except (ValueError, KeyError, IndexError) as exc:
            raise damaged(folder / self.file("buffer.npz"), exc) from exc

    def drop_in_progress(self) -> None:
        """Forget half-collected episodes (the env restarts its episodes on resume)."""


class OffPolicyPart(Part):
    """MADDPG's loop: warm-up, a replay, updates on a step schedule (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_update = max(self.cfg.warmup_steps, self.cfg.batch_size)
        self._replay_files: list[str | None] = []  # the replay chunk files of the last checkpoint

    def _make_buffer(self, num_envs: int, steps: int) -> ReplayBuffer:
        s = self.spec
        rows = min(self.cfg.buffer_size, steps)
        need, have = rows * row_bytes(s.n_agents, s.obs_dim, s.act_dim), available_memory()
        if have is not None and need > 0.9 * have:  # numpy allocates lazily: the kernel would kill the run later
            key = f"{self.method}.buffer_size" if not self.name else f"groups.{self.name}.config.buffer_size"
            raise ConfigError(f"the replay of {rows} transitions needs {need / 2**30:.1f} GiB, more than the "
                              f"{have / 2**30:.1f} GiB of memory available; lower {key}")
        return ReplayBuffer(rows, s.n_agents, s.obs_dim, s.act_dim)

    def act(self, obs: np.ndarray, extra: dict[str, np.ndarray], rng: np.random.Generator, step: int,
            sample: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
        if step < self.cfg.warmup_steps:
            return self.slots.actions(sample(rng))
        actions, _ = self.learner.policy.act(self.slots.obs(obs), explore=True, rng=rng,
                                             noise_scale=self.core.exploration(self.cfg, step),
                                             **self.slots.extra(extra.get("avail"), extra.get("agent_mask")))
        return actions

    def store(self, obs: np.ndarray, actions: np.ndarray, rew: np.ndarray, final_obs: np.ndarray, term: np.ndarray,
              done: np.ndarray, extra: dict[str, np.ndarray], final_alive: np.ndarray | None,
              final_actions: np.ndarray | None) -> None:
        s = self.slots
        alive = s.agents(extra.get("agent_mask"))
        stored = mask_actions(self.core.stored_actions(self.spec, s.actions(actions)), alive)  # zero rows: agents gone
        self.buffer.add(s.obs(obs), stored, s.agents(rew), s.obs(final_obs), s.agents(term), alive,
                        s.agents(final_alive))

    def learn(self, rng: np.random.Generator, step: int, clock: Any, record: Record) -> None:
        m = self.cfg
        while step >= self.next_update:
            for _ in range(m.updates_per_round):
                batch = self.core.prepare_batch(self.spec, m, self.buffer.sample(m.batch_size, rng), rng, step)
                with clock("update"):
                    metrics = self.learner.update(batch)
                record(self.metrics(metrics))
                self.updates += 1
            self.next_update += m.update_every

    def state(self) -> dict[str, Any]:
        return {**super().state(), "next_update": self.next_update}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.next_update = int(state["next_update"])

    # the replay is stored once per run folder, by chunks (see xmarl.training.checkpoint)
    def buffer_checkpoint(self) -> tuple[dict[str, dict[str, np.ndarray]], ReplayChunks | None]:
        b = self.buffer
        return {}, ReplayChunks(b.chunk_rows, b.pos, b.size, self._replay_files,
                                {j: b.chunk(j) for j in b.changed_chunks()})

    def saved_buffer(self, replay: ReplayChunks) -> None:
        self._replay_files = replay.files
        self.buffer.mark_saved()

    def load_buffer(self, folder: Path, run_dir: Path) -> None:
        named = replay_json(self.name)
        if not (folder / named).is_file():  # a checkpoint that holds the buffer whole
            super().load_buffer(folder, run_dir)
            self._replay_files = []
            return
        meta = load_json(folder, named)
        try:
            rows, pos, size, files = int(meta["chunk_rows"]), int(meta["pos"]), int(meta["size"]), list(meta["files"])
            if rows < 1 or len(files) != -(-size // rows):
                raise ValueError(f"{len(files)} chunk files for {size} rows of {rows}")
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(folder / named, f"{type(exc).__name__}: {exc}") from exc
        for j, fname in enumerate(files):
            chunk = replay_chunk(run_dir, fname)
            try:
                n, expected = len(chunk["obs"]), min(rows, size - j * rows)
                if n != expected:
                    raise ValueError(f"{n} rows, expected {expected}")
                self.buffer.load_chunk(j * rows, chunk)
            except (KeyError, ValueError) as exc:
                raise damaged(run_dir / REPLAY / fname, exc) from exc
        try:
            self.buffer.set_position(pos, size)
        except ValueError as exc:
            raise damaged(folder / named, exc) from exc
        if rows == self.buffer.chunk_rows:
            self._replay_files = files
            self.buffer.mark_saved()
        else:  # another buffer size: the next checkpoint writes it anew
            self._replay_files = []
            self.buffer.mark_unsaved()


class OnPolicyPart(Part):
    """COMA's and CommNet's loop: whole episodes, one batch per ``batch_episodes`` of them (see
    the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._carry: Any = None  # the policy's recurrent state between steps
        self._step: tuple[Any, ...] = ()  # (avail, alive, eps, next carry) of the step being taken

    def _make_buffer(self, num_envs: int, steps: int) -> EpisodeBuffer:
        s = self.spec
        return EpisodeBuffer(num_envs, s.n_agents, s.obs_dim, s.act_dim)

    @property
    def carry(self) -> Any:
        return self._carry

    @carry.setter
    def carry(self, value: Any) -> None:
        self._carry = value

    def act(self, obs: np.ndarray, extra: dict[str, np.ndarray], rng: np.random.Generator, step: int,
            sample: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
        s, mask = self.slots, self.spec.act_mask
        eps = self.core.exploration(self.cfg, step)
        avail = s.vectors(extra.get("avail"))
        if avail is None:
            avail = np.broadcast_to(mask, (obs.shape[0],) + mask.shape)
        alive = s.agents(extra.get("agent_mask"))
        kwargs = {"avail": avail, **({} if alive is None else {"agent_mask": alive})}
        actions, carry = self.learner.policy.act(s.obs(obs), self._carry, explore=True, rng=rng, noise_scale=eps,
                                                 **kwargs)
        self._step = (avail, alive, eps, carry)
        return actions

    def final_act(self, final_obs: np.ndarray, final_alive: np.ndarray | None,
                  rng: np.random.Generator) -> np.ndarray | None:
        _, _, eps, carry = self._step
        alive = self.slots.agents(final_alive)
        actions, _ = self.learner.policy.act(self.slots.obs(final_obs), carry, explore=True, rng=rng, noise_scale=eps,
                                             **({} if alive is None else {"agent_mask": alive}))
        return actions

    def store(self, obs: np.ndarray, actions: np.ndarray, rew: np.ndarray, final_obs: np.ndarray, term: np.ndarray,
              done: np.ndarray, extra: dict[str, np.ndarray], final_alive: np.ndarray | None,
              final_actions: np.ndarray | None) -> None:
        s = self.slots
        avail, alive, _, carry = self._step
        # an episode terminates when its env says so for every agent still in it (agents that left
        # before terminated then)
        self.buffer.add(s.obs(obs), s.actions(actions), avail, s.agents(rew), (done & term.any(1)).astype(np.float32),
                        alive)
        if done.any():
            assert final_actions is not None, "an on-policy part needs the actions at the final observations"
            self.buffer.finish(done, s.obs(final_obs), s.actions(final_actions),
                               np.broadcast_to(self.spec.act_mask, avail.shape), s.agents(final_alive))
        self._carry = reset_state(carry, done)

    def learn(self, rng: np.random.Generator, step: int, clock: Any, record: Record) -> None:
        m = self.cfg
        if len(self.buffer) < m.batch_episodes:
            return
        batch = self.core.prepare_batch(self.spec, m, self.buffer.take(), rng, step)
        self.core.before_batch(self.learner, m, step)
        for _ in range(self.core.update_epochs(m)):
            with clock("update"):
                metrics = self.learner.update(batch)
            record(self.metrics(metrics))
            self.updates += 1
            self.core.after_update(self.learner, m, self.updates)

    def drop_in_progress(self) -> None:
        self._carry = None
        self.buffer.drop_in_progress()


#: the part class of each training loop a method names (``MethodSpec.trainer``)
PARTS: dict[str, type[Part]] = {"off_policy": OffPolicyPart, "on_policy": OnPolicyPart}

__all__ = ["Part", "OffPolicyPart", "OnPolicyPart", "PARTS"]
