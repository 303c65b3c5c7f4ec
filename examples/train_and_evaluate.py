"""Train a method on a task in the backend of your choice, read what the run wrote, and evaluate
the saved policy on fresh episodes.

    python examples/train_and_evaluate.py                                  # MADDPG, torch, MPE simple_spread
    python examples/train_and_evaluate.py --backend tensorflow --env target --steps 3000
"""

import argparse
import json

import xmarl

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--method", default="maddpg")
parser.add_argument("--backend", default="torch", choices=["torch", "tensorflow", "mindspore"])
parser.add_argument("--env", default="mpe/simple_spread_v3")
parser.add_argument("--steps", type=int, default=None, help="env steps (default: the shipped config's)")
args = parser.parse_args()

# 1. Train with the shipped config of (method, env); keyword overrides win over it.
result = xmarl.run(method=args.method, backend=args.backend, env=args.env, steps=args.steps, progress=False)
print(result.summary())

# 2. The learning curve: the greedy return per agent at each evaluation.
for step, value in result.curve:
    print(f"  step {step:>9,}: return {value:8.3f}")

# 3. metrics.jsonl has one JSON object per logged step: losses, returns, speed, time shares.
rows = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
print(f"{len(rows)} rows in {result.metrics_path.name}; keys:", ", ".join(sorted(set().union(*rows))))

# 4. Load the final checkpoint and play 50 fresh greedy episodes (seeds the run never saw).
policy = xmarl.load(result.run_dir)
evaluation = policy.evaluate(episodes=50, seed=2024)
print(f"fresh episodes: return per agent {evaluation['return']:.3f}, episode length {evaluation['length']:.0f}")
