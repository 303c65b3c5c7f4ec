"""A method from a package of its own: independent REINFORCE (``tests/fixtures/xmarl_reinforce_plugin``)
registers itself through the ``xmarl.plugins`` entry point and then trains, checkpoints, compares
and checks like a built-in method, in every backend.

    pip install ./tests/fixtures/xmarl_reinforce_plugin
    python examples/method_plugin.py
"""

import argparse
import importlib

import xmarl
from xmarl import registry
from xmarl.docschema.check import check_class
from xmarl.docschema.schema import schema_of

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
parser.add_argument("--steps", type=int, default=4000)
args = parser.parse_args()

if "reinforce" not in registry.names("method"):
    raise SystemExit("the plugin is not installed: pip install ./tests/fixtures/xmarl_reinforce_plugin")

# 1. Train it like any method: the plugin's config section has its defaults, overrides apply.
for backend in args.backends:
    result = xmarl.run(method="reinforce", backend=backend, env="target", steps=args.steps, progress=False,
                       overrides={"train.num_envs": 8, "reinforce.batch_episodes": 8})
    print(f"{backend:>10}: greedy return per agent {result.final_metrics['eval_return']:.3f} "
          f"after {args.steps} env steps ({result.run_dir})")

# 2. Parity: the plugin's cases (same weights, same frozen batches) in every backend.
report = xmarl.parity(method="reinforce", backends=args.backends)
print(report.table())
assert report.ok, "the backends of the plugin method disagree"

# 3. Its classes carry the docstrings of its own schema file, checked against their signatures.
for backend in args.backends:
    module = importlib.import_module(f"xmarl_reinforce.backends.{backend}")
    for name in ("ReinforceActor", "ReinforceLearner"):
        cls = getattr(module, name)
        problems = check_class(cls, name, schema_of(cls), backend=backend)
        assert not problems, problems
print("docstring schema: every backend's ReinforceActor and ReinforceLearner match it")

# 4. Each backend's loss against the plugin's numpy reference, on a parity case's frozen batch.
from xmarl_reinforce.core import reference_loss  # noqa: E402
from xmarl_reinforce.parity import parity_cases  # noqa: E402

case = parity_cases()[0]
want = reference_loss(case.spec, case.config, case.weights, case.batches[0])["loss"]
for backend in args.backends:
    learner = registry.get("learner", "reinforce", backend)(case.spec, case.config, case.weights)
    got = float(learner.gradients(case.batches[0])["loss/actor"])
    print(f"{backend:>10}: loss {got:.6f}, numpy reference {want:.6f}")
    assert abs(got - want) <= 1e-5 * max(1.0, abs(want)), (backend, got, want)
