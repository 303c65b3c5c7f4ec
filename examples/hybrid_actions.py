"""Hybrid actions: a discrete decision and a continuous value in one action. In the built-in
``median`` bargaining game each agent decides whether to take part in a deal and what to offer;
MADDPG relaxes the decision with Gumbel-softmax and squashes the offer into its bounds.

    python examples/hybrid_actions.py
    python examples/hybrid_actions.py --backend tensorflow --steps 6000
"""

import argparse

import numpy as np

import xmarl
from xmarl.envs import make_env

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--backend", default="torch", choices=["torch", "tensorflow", "mindspore"])
parser.add_argument("--steps", type=int, default=None, help="env steps (default: the shipped config's, 6000)")
args = parser.parse_args()

env = make_env("median", 1)
# Each agent's Tuple(Discrete(2), Box(0, 1, (1,))) becomes one action vector: the decision's
# one-hot [stay out, take part], then the offer.
print(f"action kind {env.spec.action_kind}: {env.spec.disc_dims[0]} categorical entries + "
      f"{env.spec.act_dim - env.spec.disc_dims[0]} continuous per agent")

result = xmarl.run(method="maddpg", backend=args.backend, env="median", steps=args.steps, progress=False)
print(result.summary())

# Play one greedy episode and show each agent's decision and offer against its private value.
policy = xmarl.load(result.run_dir)
obs = env.reset(seed=7)
values = obs[0, :, 0]  # each agent's private value is the first entry of its observation
print(f"private values {np.round(values, 3).tolist()}, median {np.median(values):.3f}")
for rnd in range(3):
    actions, _ = policy.act(obs)  # [E, A, 3]: the decision's one-hot, then the offer
    obs, _, rewards, _, done = env.step(actions)
    joins = actions[0, :, 1] > actions[0, :, 0]
    offers = actions[0, :, 2]
    print(f"round {rnd + 1}: takes part {joins.astype(int).tolist()}, offers {np.round(offers, 3).tolist()}, "
          f"team reward {rewards[0, 0]:.3f}")
env.close()
