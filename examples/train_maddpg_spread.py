"""Train MADDPG on MPE simple_spread in the backend of your choice and print where results are.

    python examples/train_maddpg_spread.py tensorflow
"""

import sys

import xmarl

backend = sys.argv[1] if len(sys.argv) > 1 else "torch"
result = xmarl.run(method="maddpg", backend=backend, env="mpe/simple_spread_v3")
print(result.summary())
print("learning curve (env step, greedy return per agent):", result.curve)
