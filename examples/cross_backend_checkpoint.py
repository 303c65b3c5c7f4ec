"""Train in one framework and load the checkpoint into the others: the weights are canonical numpy
arrays, so every backend acts the same on the same observations.

    python examples/cross_backend_checkpoint.py
    python examples/cross_backend_checkpoint.py --method maddpg --train-backend mindspore
"""

import argparse

import numpy as np

import xmarl

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--method", default="coma")
parser.add_argument("--env", default="target")
parser.add_argument("--train-backend", default="torch")
parser.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
parser.add_argument("--steps", type=int, default=None)
args = parser.parse_args()

result = xmarl.run(method=args.method, backend=args.train_backend, env=args.env, steps=args.steps, progress=False)
print(f"trained {args.method} in {args.train_backend}: final greedy return {result.final_metrics['eval_return']:.3f}")

policies = {b: xmarl.load(result.run_dir, backend=b) for b in args.backends}
spec = policies[args.train_backend].spec
obs = np.random.default_rng(0).standard_normal((64, spec.n_agents, spec.obs_dim)).astype(np.float32)

actions = {}
for backend, policy in policies.items():
    actions[backend], _ = policy.act(obs)  # greedy actions for 64 observations of every agent
    # evaluate() replays the run's own evaluation episodes: the run's final return, in any backend
    print(f"{backend:>10}: return {policy.evaluate()['return']:.3f}, first actions {actions[backend][:3].tolist()}")

same = all(np.array_equal(a, actions[args.train_backend]) for a in actions.values())
print("every backend chose the same actions:", same)
assert same, "the backends disagree on the loaded policy's actions"
