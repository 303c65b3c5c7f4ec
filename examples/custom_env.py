"""Your own PettingZoo environment: write a ``ParallelEnv``, check it with PettingZoo's own API
test, register it under a name, and train any xmarl method on it in any backend.

    python examples/custom_env.py
    python examples/custom_env.py --method maddpg --backend mindspore --steps 20000
"""

import argparse

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.test import parallel_api_test

import xmarl
from xmarl.envs import make_env


class Rendezvous(ParallelEnv):
    """Agents on a ring of ``size`` cells step left, stay or step right; every step each agent is
    rewarded with minus the mean ring distance between all pairs, so the team must meet.
    Each agent observes its own cell (one-hot) and the other agents' offsets from it."""

    metadata = {"name": "rendezvous_v0", "render_modes": []}

    def __init__(self, n_agents: int = 2, size: int = 8, max_steps: int = 12):
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.size, self.max_steps = size, max_steps
        self.rng = np.random.default_rng()
        # one space object per agent, returned on every call (PettingZoo's API test checks it)
        self._obs_space = spaces.Box(-1.0, 1.0, (size + n_agents - 1,), np.float32)
        self._act_space = spaces.Discrete(3)  # 0: step left, 1: stay, 2: step right

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    def _obs(self):
        out = {}
        for i, agent in enumerate(self.agents):
            own = np.eye(self.size, dtype=np.float32)[self.pos[i]]
            offsets = [((self.pos[j] - self.pos[i] + self.size // 2) % self.size - self.size // 2) / (self.size // 2)
                       for j in range(len(self.agents)) if j != i]
            out[agent] = np.concatenate([own, np.asarray(offsets, np.float32)])
        return out

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.pos = self.rng.integers(0, self.size, len(self.agents))
        self.t = 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.pos = (self.pos + np.array([actions[a] - 1 for a in self.agents])) % self.size
        self.t += 1
        gaps = [min((p - q) % self.size, (q - p) % self.size) for k, p in enumerate(self.pos) for q in self.pos[k + 1:]]
        reward = -float(np.mean(gaps)) / (self.size // 2)
        truncated = self.t >= self.max_steps
        obs = self._obs()
        rewards = {a: reward for a in self.agents}
        terms = {a: False for a in self.agents}
        truncs = {a: truncated for a in self.agents}
        infos = {a: {} for a in self.agents}
        if truncated:
            self.agents = []
        return obs, rewards, terms, truncs, infos


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--method", default="coma", choices=["coma", "maddpg", "commnet"])
parser.add_argument("--backend", default="torch", choices=["torch", "tensorflow", "mindspore"])
parser.add_argument("--steps", type=int, default=40_000)
args = parser.parse_args()

parallel_api_test(Rendezvous(), num_cycles=50)  # PettingZoo's own checks of the ParallelEnv API

# Registered names are what configs and the command line use; keyword arguments come from env_kwargs.
xmarl.registry.add("env", "tutorial/rendezvous", Rendezvous)

# For this small game COMA learns faster with a larger step size and a short exploration schedule
# than with its defaults (tuned for MPE); other methods run with theirs.
tuned = {"coma.lr_actor": 3e-3, "coma.lr_critic": 3e-3, "coma.gamma": 0.9, "coma.epsilon_anneal_steps": 10_000}
overrides = {"env_kwargs": {"n_agents": 2, "size": 8}, "train.num_envs": 8,
             "train.eval_interval": max(args.steps // 8, 1), **(tuned if args.method == "coma" else {})}
result = xmarl.run(method=args.method, backend=args.backend, env="tutorial/rendezvous", steps=args.steps,
                   progress=False, overrides=overrides)
print(result.summary())
for step, value in result.curve:
    print(f"  step {step:>7,}: return per agent {value:7.3f}")

# The same episodes under uniformly random actions, for scale.
env = make_env("tutorial/rendezvous", 50, n_agents=2, size=8)
env.reset(seed=1)
total = np.zeros(50)
for _ in range(12):
    total += env.step(env.sample_actions(np.random.default_rng(0)))[2].mean(1)
print(f"random actions: return per agent {total.mean():.3f}; trained policy:",
      f"{xmarl.load(result.run_dir).evaluate(episodes=50, seed=1)['return']:.3f}")
