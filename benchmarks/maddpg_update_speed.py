"""MADDPG update speed: milliseconds per ``learner.update(batch)`` of xmarl's torch MADDPG learner
against a minimal single-file plain-torch MADDPG written here (``nn.Linear`` layers, one
``torch.optim.Adam`` step each for critic and actor, a soft target update), on the shipped
config ``configs/maddpg/mpe/simple_spread_v3.yaml`` (3 agents, batch 1024, hidden [64, 64],
shared parameters with an agent-id one-hot, Gumbel-softmax actions, ``policy_reg``,
``grad_clip`` 0.5) and the simple_spread task's shapes (18 observation entries, 5 actions).

Both do the same job: a numpy batch in (agent-major ``[A, B, ...]`` arrays, the Gumbel noise
included: xmarl draws it in ``MADDPG.prepare_batch``, outside the update, so both see the same
draws), the two losses out as floats. Before timing, both start from the same numpy weights
(``MADDPG.init_weights``) and run the same batches; the script asserts that the losses and every
updated weight (networks and targets) agree to 1e-5 after one update and after three, and
records the largest differences. The reference uses no xmarl code in its math: xmarl only
supplies the config, the task's shapes, the initial weights and the batch.

Timing: one torch thread; after a warm-up, ``--repeats`` rounds of ``--updates`` updates of each
in turn (the order alternating between rounds), median ms per update of each and the ratio
xmarl / reference (the target is at most 1.3x). A breakdown by part of the update (batch to
tensors, critic loss, critic step, actor loss, actor step, target update, losses to floats) is
timed the same way for both; with ``--profile``, torch.profiler's heaviest ops are recorded too.

    python benchmarks/maddpg_update_speed.py --updates 20 --repeats 30   # the recorded run, under a minute
    python benchmarks/maddpg_update_speed.py --quick                     # a short check; writes no results

Results: benchmarks/results/maddpg_update_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import xmarl
from xmarl import registry
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec
from xmarl.envs import make_env, run_env
from xmarl.files import atomic_write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "maddpg_update_speed"
TOLERANCE = 1e-5
TARGET_RATIO = 1.3
PARTS = ["batch to tensors", "critic loss", "critic step", "actor loss", "actor step", "target update",
         "losses to floats"]

Batch = dict[str, np.ndarray]


# -- the reference: MADDPG for discrete actions with shared parameters, in plain torch ------------------
def mlp(in_dim: int, hidden: list[int], out_dim: int) -> nn.Sequential:
    """Linear-ReLU layers of ``hidden`` widths, then a linear head."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ReferenceMADDPG:
    """MADDPG (Lowe et al. 2017) for ``n_agents`` agents with discrete actions and one shared actor
    and critic, each fed the agent's one-hot id. Batches are agent-major: ``obs``/``next_obs``
    ``[A, B, obs_dim]``, ``act``/``gumbel``/``next_gumbel`` ``[A, B, n_actions]``, ``rew``/``done``/
    ``agent_mask``/``next_agent_mask`` ``[A, B]``. Each agent's losses are means over the
    transitions where it is alive (``agent_mask``), summed over agents."""

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int, cfg: Any) -> None:
        A = n_agents
        self.A, self.cfg = A, cfg
        self.actor = mlp(obs_dim + A, list(cfg.hidden_sizes), n_actions)
        self.critic = mlp(A * (obs_dim + n_actions) + A, list(cfg.hidden_sizes), 1)
        self.target_actor = mlp(obs_dim + A, list(cfg.hidden_sizes), n_actions)
        self.target_critic = mlp(A * (obs_dim + n_actions) + A, list(cfg.hidden_sizes), 1)
        self.nets = {"actor": self.actor, "critic": self.critic, "target_actor": self.target_actor,
                     "target_critic": self.target_critic}
        for net in self.nets.values():
            net.requires_grad_(net in (self.actor, self.critic))
        betas = tuple(cfg.adam.betas)
        # torch's Adam adds eps to sqrt(v_hat), after bias correction
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr_actor, betas=betas, eps=cfg.adam.eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr_critic, betas=betas,
                                           eps=cfg.adam.eps)
        self.eye = torch.eye(A)
        self.own = self.eye.bool()[:, :, None, None]  # own[i, j] iff j == i: critic i's slot for its own action

    # weights under xmarl's canonical names and layouts (kernels [1, in, out], biases [1, out])
    def set_weights(self, weights: Batch) -> None:
        with torch.no_grad():
            for name, net in self.nets.items():
                for key, layer in self._layers(net):
                    layer.weight.copy_(torch.from_numpy(weights[f"{name}/{key}/kernel"][0].T.copy()))
                    layer.bias.copy_(torch.from_numpy(weights[f"{name}/{key}/bias"][0].copy()))

    def get_weights(self) -> Batch:
        out: Batch = {}
        for name, net in self.nets.items():
            for key, layer in self._layers(net):
                out[f"{name}/{key}/kernel"] = layer.weight.detach().numpy().T[None].copy()
                out[f"{name}/{key}/bias"] = layer.bias.detach().numpy()[None].copy()
        return out

    @staticmethod
    def _layers(net: nn.Sequential) -> list[tuple[str, nn.Linear]]:
        linears = [m for m in net if isinstance(m, nn.Linear)]
        return [(f"torso/dense_{k}", m) for k, m in enumerate(linears[:-1])] + [("head", linears[-1])]

    # the update, in parts (timed one by one in the breakdown)
    def tensors(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in batch.items()}

    def _ids(self, B: int) -> torch.Tensor:
        return self.eye[:, None, :].expand(self.A, B, self.A)

    def _joint(self, x: torch.Tensor) -> torch.Tensor:
        """``[A, B, d]`` -> ``[A, B, A*d]``: every agent's values side by side, one copy per critic."""
        A, B, d = x.shape
        return x.transpose(0, 1).reshape(1, B, A * d).expand(A, B, A * d)

    def _q(self, net: nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Critic ``i``'s value for every agent ``i``: ``[A, B]``."""
        return net(torch.cat([self._joint(obs), act, self._ids(obs.shape[1])], -1)).squeeze(-1)

    def _sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.softmax((logits + noise) / self.cfg.gumbel_temperature, dim=-1)

    @staticmethod
    def _mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return ((w * x).sum(1) / w.sum(1).clamp(min=1.0)).sum()

    def critic_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        B = b["obs"].shape[1]
        with torch.no_grad():
            next_act = self._sample(self.target_actor(torch.cat([b["next_obs"], self._ids(B)], -1)), b["next_gumbel"])
            next_act = next_act * b["next_agent_mask"].unsqueeze(-1)
            q_next = self._q(self.target_critic, b["next_obs"], self._joint(next_act))
            y = b["rew"] + self.cfg.gamma * (1.0 - b["done"]) * q_next
        q = self._q(self.critic, b["obs"], self._joint(b["act"]))
        return self._mean((q - y).pow(2), b["agent_mask"])

    def actor_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        A, B, d = b["act"].shape
        raw = self.actor(torch.cat([b["obs"], self._ids(B)], -1))
        pi = self._sample(raw, b["gumbel"])
        # critic i sees agent i's policy action in slot i, the replayed actions in the others
        mixed = torch.where(self.own, pi.unsqueeze(0), b["act"].unsqueeze(0))  # [critic i, slot j, B, d]
        q = self._q(self.critic, b["obs"], mixed.transpose(1, 2).reshape(A, B, A * d))
        w = b["agent_mask"]
        return -self._mean(q, w) + self.cfg.policy_reg * self._mean(raw.pow(2).mean(-1), w)

    def step(self, loss: torch.Tensor, net: nn.Module, opt: torch.optim.Optimizer) -> torch.Tensor:
        """One optimiser step of ``net`` on ``loss``; returns the gradient norm before clipping."""
        opt.zero_grad()
        params = list(net.parameters())
        loss.backward(inputs=params)
        norm = nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        opt.step()
        return norm

    @torch.no_grad()
    def soft_update(self) -> None:
        tau = self.cfg.tau
        for src, dst in ((self.actor, self.target_actor), (self.critic, self.target_critic)):
            for p, t in zip(src.parameters(), dst.parameters()):
                t.mul_(1.0 - tau).add_(p, alpha=tau)

    def update(self, batch: Batch) -> dict[str, float]:
        b = self.tensors(batch)
        critic_loss = self.critic_loss(b)
        self.critic_norm = self.step(critic_loss, self.critic, self.critic_opt)
        actor_loss = self.actor_loss(b)  # reads the critic just updated
        self.actor_norm = self.step(actor_loss, self.actor, self.actor_opt)
        self.soft_update()
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item()}


# -- the setup both share ------------------------------------------------------------------------------
def task_spec(cfg: Any) -> AgentSpec:
    """simple_spread's shapes as xmarl's learners see them (from one env of the config's task)."""
    env = make_env(run_env(cfg.env, cfg.env_impl, cfg.env_kwargs), 1, **cfg.env_kwargs)
    spec = env.spec
    env.close()
    return spec


def make_batches(spec: AgentSpec, mcfg: Any, n: int, seed: int) -> list[Batch]:
    """``n`` replay-style batches of random transitions (one-hot actions; rewards around
    simple_spread's, about -3, so that the critic's gradient norm exceeds ``grad_clip`` and the
    clipping is exercised), each with its Gumbel noise and alive masks from
    ``MADDPG.prepare_batch`` (as the trainer feeds the learner)."""
    rng = np.random.default_rng(seed)
    A, B, od, ad = spec.n_agents, mcfg.batch_size, spec.obs_dim, spec.act_dim
    out = []
    for _ in range(n):
        data = {"obs": rng.standard_normal((A, B, od)).astype(np.float32),
                "act": np.eye(ad, dtype=np.float32)[rng.integers(0, ad, (A, B))],
                "rew": (-3.0 + rng.standard_normal((A, B))).astype(np.float32),
                "next_obs": rng.standard_normal((A, B, od)).astype(np.float32),
                "done": (rng.random((A, B)) < 0.04).astype(np.float32)}
        batch = MADDPG.prepare_batch(spec, mcfg, data, rng, 0)
        out.append({k: np.ascontiguousarray(v, np.float32) for k, v in batch.items()})
    return out


def build(spec: AgentSpec, mcfg: Any, weights: Batch) -> tuple[Any, ReferenceMADDPG]:
    learner = registry.get("learner", "maddpg", "torch")(spec, mcfg, weights)
    ref = ReferenceMADDPG(spec.n_agents, spec.obs_dim, spec.act_dim, mcfg)
    ref.set_weights(weights)
    return learner, ref


def check_same_math(spec: AgentSpec, mcfg: Any, weights: Batch, batches: list[Batch]) -> dict[str, Any]:
    """Largest differences of the losses and the updated weights after 1 and after 3 updates from
    the same weights on the same batches; raises when any exceeds :data:`TOLERANCE`."""
    learner, ref = build(spec, mcfg, weights)
    out: dict[str, Any] = {"tolerance": TOLERANCE}
    for k, batch in enumerate(batches[:3], start=1):
        got, want = learner.update(batch), ref.update(batch)
        norms = {"critic": float(ref.critic_norm), "actor": float(ref.actor_norm)}
        if k not in (1, 3):
            continue
        wx, wr = learner.get_weights(), ref.get_weights()
        assert set(wx) == set(wr), sorted(set(wx) ^ set(wr))
        by_net: dict[str, float] = {}
        for name in wx:
            net = name.split("/")[0]
            by_net[net] = max(by_net.get(net, 0.0), float(np.abs(wx[name] - wr[name]).max()))
        moved = max(float(np.abs(wx[n] - weights[n]).max()) for n in wx)
        row = {"critic_loss": abs(got["critic_loss"] - want["critic_loss"]),
               "actor_loss": abs(got["actor_loss"] - want["actor_loss"]),
               "losses": {"xmarl": got, "reference": want}, "weights": by_net,
               "weights_max": max(by_net.values()), "largest_weight_change": moved,
               "grad_norms_before_clip": norms}
        out[f"after_{k}"] = row
        print(f"after {k} update(s): |critic loss diff| {row['critic_loss']:.2e} ({got['critic_loss']:.6f}), "
              f"|actor loss diff| {row['actor_loss']:.2e} ({got['actor_loss']:.6f}), max |weight diff| "
              f"{row['weights_max']:.2e} over {len(wx)} arrays (largest weight change {moved:.2e}; gradient norms "
              f"before clipping: critic {norms['critic']:.3f}, actor {norms['actor']:.4f})", flush=True)
        worst = max(row["critic_loss"], row["actor_loss"], row["weights_max"])
        if not worst <= TOLERANCE:
            raise SystemExit(f"xmarl and the reference disagree after {k} update(s): {worst:.3e} > {TOLERANCE} "
                             f"({json.dumps(row, default=float)}); the timing would be meaningless")
    return out


# -- timing --------------------------------------------------------------------------------------------
def time_block(update: Callable[[Batch], Any], batches: list[Batch], n: int) -> float:
    """ms per call of ``update`` over ``n`` calls, cycling through ``batches``."""
    t0 = time.perf_counter()
    for k in range(n):
        update(batches[k % len(batches)])
    return (time.perf_counter() - t0) * 1e3 / n


def xmarl_parts(learner: Any, batch: Batch, acc: dict[str, float]) -> None:
    """One xmarl update, its parts as ``MADDPGLearner.update`` runs them, adding seconds to ``acc``."""
    t = [time.perf_counter()]
    b = learner._tensors(learner._prepare(batch, learn=True))
    t.append(time.perf_counter())
    closs = learner._critic_loss(b)
    t.append(time.perf_counter())
    closs = learner._step(closs, list(learner.critic.canonical().values()), learner.critic_opt)
    t.append(time.perf_counter())
    aloss = learner._actor_loss(b)
    t.append(time.perf_counter())
    aloss = learner._step(aloss, list(learner.actor.canonical().values()), learner.actor_opt)
    t.append(time.perf_counter())
    with torch.no_grad():
        for src, dst in ((learner.actor, learner.target_actor), (learner.critic, learner.target_critic)):
            for p, q in zip(src.parameters(), dst.parameters()):
                q.mul_(1.0 - learner.cfg.tau).add_(p, alpha=learner.cfg.tau)
    t.append(time.perf_counter())
    learner.ops.metrics({"critic_loss": closs, "actor_loss": aloss}, learner.method.metrics)
    t.append(time.perf_counter())
    for name, a, z in zip(PARTS, t[:-1], t[1:]):
        acc[name] += z - a


def reference_parts(ref: ReferenceMADDPG, batch: Batch, acc: dict[str, float]) -> None:
    """One reference update (:meth:`ReferenceMADDPG.update`) part by part, adding seconds to ``acc``."""
    t = [time.perf_counter()]
    b = ref.tensors(batch)
    t.append(time.perf_counter())
    closs = ref.critic_loss(b)
    t.append(time.perf_counter())
    ref.step(closs, ref.critic, ref.critic_opt)
    t.append(time.perf_counter())
    aloss = ref.actor_loss(b)
    t.append(time.perf_counter())
    ref.step(aloss, ref.actor, ref.actor_opt)
    t.append(time.perf_counter())
    ref.soft_update()
    t.append(time.perf_counter())
    _ = {"critic_loss": closs.item(), "actor_loss": aloss.item()}  # as update returns them
    t.append(time.perf_counter())
    for name, a, z in zip(PARTS, t[:-1], t[1:]):
        acc[name] += z - a


def time_parts(learner: Any, ref: ReferenceMADDPG, batches: list[Batch], n: int, repeats: int
               ) -> dict[str, dict[str, float]]:
    """Median ms per update of each part, for both, interleaved as the whole updates are."""
    runs: dict[str, dict[str, list[float]]] = {w: {p: [] for p in PARTS} for w in ("xmarl", "reference")}
    fns = {"xmarl": lambda b, acc: xmarl_parts(learner, b, acc),
           "reference": lambda b, acc: reference_parts(ref, b, acc)}
    for r in range(repeats):
        for who in (("xmarl", "reference") if r % 2 == 0 else ("reference", "xmarl")):
            acc = dict.fromkeys(PARTS, 0.0)
            for k in range(n):
                fns[who](batches[k % len(batches)], acc)
            for p in PARTS:
                runs[who][p].append(acc[p] * 1e3 / n)
    return {who: {p: statistics.median(v) for p, v in parts.items()} for who, parts in runs.items()}


def profile(learner: Any, ref: ReferenceMADDPG, batches: list[Batch], n: int, top: int = 12
            ) -> dict[str, list[dict[str, Any]]]:
    """torch.profiler's ops by self CPU time over ``n`` updates of each (ms per update, call counts)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    out: dict[str, list[dict[str, Any]]] = {}
    for who, update in (("xmarl", learner.update), ("reference", ref.update)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for k in range(n):
                update(batches[k % len(batches)])
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        out[who] = [{"op": e.key, "self_ms_per_update": e.self_cpu_time_total / 1e3 / n,
                     "calls_per_update": e.count / n} for e in events[:top]]
    return out


# -- the record ------------------------------------------------------------------------------------------
def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def render(record: dict[str, Any]) -> str:
    meta, eq, tm = record["meta"], record["equality"], record["timing"]
    e1, e3 = eq["after_1"], eq["after_3"]
    lines = ["# MADDPG update speed: xmarl's torch learner against a plain-torch reference", "",
             f"Command: `{meta['command']}` ({meta['machine']}, Python {meta['python']}, torch {meta['torch']}, "
             f"CPU, {meta['threads']} torch thread; {meta['date']}; 1-minute load average {meta['load_start']} at "
             f"the start, {meta['load_end']} at the end).", "",
             *([f"The recording ran beside another long job on this {os.cpu_count()}-core machine (the load average "
                "above), so the absolute times are higher and noisier than on an idle machine; the two were timed "
                "interleaved (alternating blocks), so their ratio is still a fair comparison.", ""]
               if meta["beside_another_job"] else []),
             f"Config `configs/maddpg/mpe/simple_spread_v3.yaml` ({meta['n_agents']} agents, batch "
             f"{meta['batch_size']}, hidden {meta['hidden_sizes']}, shared parameters, Gumbel-softmax actions, "
             f"policy_reg {meta['policy_reg']}, grad_clip {meta['grad_clip']}, Adam with eps after bias correction). "
             "One update = `learner.update(batch)`: numpy batch in, both losses out as floats. The reference is "
             "written in this script in plain torch (`nn.Linear`, `torch.optim.Adam`, `clip_grad_norm_`, "
             "in-place soft update).", "",
             "## Same math", "",
             f"Same initial numpy weights, same batches (Gumbel noise included), tolerance {eq['tolerance']:g}:", "",
             "| after | critic loss diff | actor loss diff | max weight diff | largest weight change |",
             "|---|---:|---:|---:|---:|"]
    for k, e in (("1 update", e1), ("3 updates", e3)):
        lines.append(f"| {k} | {e['critic_loss']:.2e} | {e['actor_loss']:.2e} | {e['weights_max']:.2e} | "
                     f"{e['largest_weight_change']:.2e} |")
    lines += ["", "Max weight difference per network after 1 update: " +
              ", ".join(f"{n} {v:.2e}" for n, v in e1["weights"].items()) + ".", "",
              "## Time per update", "",
              f"Median of {meta['repeats']} interleaved blocks of {meta['updates']} updates each, after "
              f"{meta['warmup']} warm-up updates each.", "",
              "| implementation | ms / update | min .. max |", "|---|---:|---:|"]
    for who in ("xmarl", "reference"):
        v = tm["runs"][who]
        lines.append(f"| {who} | {tm['median'][who]:.2f} | {min(v):.2f} .. {max(v):.2f} |")
    verdict = "within" if tm["ratio"] <= TARGET_RATIO else "above"
    lines += ["", f"Ratio xmarl / reference: **{tm['ratio']:.2f}x** ({verdict} the {TARGET_RATIO}x target).", "",
              "## Where the time goes", "",
              "Each update timed part by part (median ms per update over the same interleaved blocks; timing the "
              "parts adds a little to each):", "",
              "| part | xmarl | reference | xmarl - reference |", "|---|---:|---:|---:|"]
    parts = record["parts"]
    for p in PARTS:
        x, r = parts["xmarl"][p], parts["reference"][p]
        lines.append(f"| {p} | {x:.3f} | {r:.3f} | {x - r:+.3f} |")
    sx, sr = sum(parts["xmarl"].values()), sum(parts["reference"].values())
    lines.append(f"| total | {sx:.3f} | {sr:.3f} | {sx - sr:+.3f} |")
    if record.get("gap"):
        title = "Where the gap is" if tm["ratio"] > TARGET_RATIO else "Where xmarl's extra time is (within the target)"
        lines += ["", f"## {title}", "", *record["gap"]]
    if record.get("profile"):
        lines += ["", "## torch.profiler: heaviest ops by self CPU time", "",
                  f"Over {meta['updates']} updates of each, one profile after the other (not interleaved, and the "
                  "profiler adds its own overhead: compare the op counts, and the times only roughly). xmarl's dense "
                  "layers run as `torch.matmul(x, kernel) + bias` (`aten::mm` and a separate `aten::add`), the "
                  "reference's as `nn.Linear` (`aten::addmm`, which first copies the bias into its output: part of "
                  "its `aten::copy_`).", ""]
        for who, rows in record["profile"].items():
            lines += [f"{who}:", "", "| op | self ms / update | calls / update |", "|---|---:|---:|"]
            lines += [f"| `{r['op']}` | {r['self_ms_per_update']:.3f} | {r['calls_per_update']:.0f} |" for r in rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def gap_notes(parts: dict[str, dict[str, float]]) -> list[str]:
    """The parts that make xmarl's extra time, largest first (the "where the gap is" section when
    the ratio misses the target)."""
    extra = sorted(((parts["xmarl"][p] - parts["reference"][p], p) for p in PARTS), reverse=True)
    total = sum(d for d, _ in extra)
    notes = [f"xmarl takes {total:.3f} ms more per update in the part-by-part timing; by part:", ""]
    notes += [f"- {p}: {d:+.3f} ms (xmarl {parts['xmarl'][p]:.3f} vs reference {parts['reference'][p]:.3f})"
              for d, p in extra]
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=20, help="updates per timed block")
    ap.add_argument("--repeats", type=int, default=10, help="timed blocks of each, interleaved")
    ap.add_argument("--warmup", type=int, default=10, help="untimed updates of each first")
    ap.add_argument("--quick", action="store_true", help="a short run (5 updates x 3 repeats); writes no results "
                    "unless --out is given")
    ap.add_argument("--profile", action="store_true", help="also record torch.profiler's heaviest ops")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help=f"results path without suffix (default {RESULTS})")
    args = ap.parse_args()
    if args.quick:
        args.updates, args.repeats, args.warmup = 5, 3, 3
    out = Path(args.out) if args.out else (None if args.quick else RESULTS)
    torch.set_num_threads(1)
    load_start = load_average()

    cfg = xmarl.load_config("maddpg", "mpe/simple_spread_v3", "torch")
    mcfg = cfg.maddpg
    spec = task_spec(cfg)
    weights = MADDPG.init_weights(spec, mcfg, args.seed)
    batches = make_batches(spec, mcfg, 4, args.seed)
    equality = check_same_math(spec, mcfg, weights, batches)

    learner, ref = build(spec, mcfg, weights)
    fns = {"xmarl": learner.update, "reference": ref.update}
    for fn in fns.values():
        time_block(fn, batches, args.warmup)
    runs: dict[str, list[float]] = {"xmarl": [], "reference": []}
    for r in range(args.repeats):
        for who in (("xmarl", "reference") if r % 2 == 0 else ("reference", "xmarl")):
            runs[who].append(time_block(fns[who], batches, args.updates))
        print(f"block {r + 1}/{args.repeats}: xmarl {runs['xmarl'][-1]:.2f} ms, reference "
              f"{runs['reference'][-1]:.2f} ms", flush=True)
    med = {who: statistics.median(v) for who, v in runs.items()}
    ratio = med["xmarl"] / med["reference"]
    print(f"median ms/update: xmarl {med['xmarl']:.2f}, reference {med['reference']:.2f}, ratio {ratio:.2f}x",
          flush=True)
    parts = time_parts(learner, ref, batches, args.updates, args.repeats)
    for p in PARTS:
        print(f"  {p:>16}: xmarl {parts['xmarl'][p]:.3f} ms, reference {parts['reference'][p]:.3f} ms")
    prof = profile(learner, ref, batches, args.updates) if args.profile else None

    command = " ".join(["python benchmarks/maddpg_update_speed.py", *sys.argv[1:]])
    la_end = load_average()
    meta = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d"), "load_start": None if load_start is None else round(load_start, 1),
            "load_end": None if la_end is None else round(la_end, 1),
            # more than this benchmark's one busy core: something else was running
            "beside_another_job": max(load_start or 0.0, la_end or 0.0) > 1.5,
            "updates": args.updates, "repeats": args.repeats, "warmup": args.warmup, "seed": args.seed,
            "n_agents": spec.n_agents, "obs_dim": spec.obs_dim, "act_dim": spec.act_dim,
            "batch_size": mcfg.batch_size, "hidden_sizes": list(mcfg.hidden_sizes), "policy_reg": mcfg.policy_reg,
            "grad_clip": mcfg.grad_clip}
    record = {"meta": meta, "equality": equality,
              "timing": {"median": med, "ratio": ratio, "target_ratio": TARGET_RATIO, "runs": runs},
              "parts": parts, "gap": gap_notes(parts), "profile": prof}
    md = render(record)
    if out is not None:
        atomic_write_text(out.with_suffix(".json"), json.dumps(record, indent=1, default=float) + "\n")
        atomic_write_text(out.with_suffix(".md"), md)
        print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    print(md)


if __name__ == "__main__":
    main()
