"""Compare frameworks: the same method and config in torch, TensorFlow and MindSpore over several
seeds, with a report that says whether the backends' final returns differ.

    python examples/compare_backends.py                        # MADDPG on target, 3 seeds per backend
    python examples/compare_backends.py --seeds 5 --steps 3000
"""

import argparse
import json

import xmarl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="maddpg")
    parser.add_argument("--env", default="target")
    parser.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out-dir", default="compare/maddpg-target")
    args = parser.parse_args()

    # Every (backend, seed) is one xmarl.run with the same config, run by a local process pool;
    # finished runs in out_dir are reused, so running this again only redraws the report.
    result = xmarl.compare(method=args.method, env=args.env, backends=args.backends, seeds=args.seeds,
                           steps=args.steps, out_dir=args.out_dir, progress=False,
                           overrides={"train.eval_interval": max(args.steps // 6, 1), "train.tensorboard": False})
    print(result.summary_text())

    # The numbers behind the report: one entry per (method, env) task.
    task = result.summary["tasks"][0]
    for backend, final in task["final_return"].items():
        print(f"{backend:>10}: mean {final['mean']:.3f}, IQM {final['iqm']:.3f} over {final['n']} seeds")
    print(f"p = {task['test']['pvalue']:.3f}: {task['test']['verdict']}")
    print("report:", result.report, "| figures:", ", ".join(p.name for p in result.figures))
    print("runs.csv columns:", (result.out_dir / "runs.csv").read_text().splitlines()[0])
    saved = json.loads((result.out_dir / "summary.json").read_text())  # the same numbers, for your own plots
    files = sorted(p.name for p in result.out_dir.iterdir())
    print("summary.json keys:", ", ".join(saved), "| report folder:", ", ".join(files))


if __name__ == "__main__":  # the local executor starts worker processes, which import this file
    main()
