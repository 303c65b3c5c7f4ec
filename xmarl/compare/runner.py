"""``xmarl.compare``: the methods × envs × backends × seeds matrix of ``xmarl.run`` calls, run by
an executor, then aggregated into a report folder.

Folder layout (``out_dir``)::

    compare.json                    what was asked (methods, envs, backends, seeds, overrides, ...)
    runs/<method>-<env>-<backend>-s<seed>/   one xmarl run each: config.yaml, metrics.jsonl, result.json, ...
    report.md                       tables, verdicts and throughput per task, linking the PNGs
    curves_<method>_<env>.png       learning curves of every backend, mean ± 95% bootstrap CI
    summary.json, runs.csv          every number of the report

Executors. ``"local"`` (default): a process pool of ``workers`` processes started with the
``spawn`` method (TensorFlow and MindSpore do not survive ``fork``); ``"ray"``: Ray tasks on a
local Ray (``ray.init(num_cpus=workers)``), on the cluster at ``address``, or on the Ray
that is already initialised. Both run the same function (:func:`run_task`) on the same
:class:`RunTask` and return the same record, so results are identical for the same seeds.
Each run sets its framework's threads to ``threads`` (``train.threads``) and limits the
BLAS/OpenMP pools, so that parallel runs do not oversubscribe the cores. With Ray on several
machines, each worker sends back the run's ``config.yaml``, ``metrics.jsonl`` and
``result.json``, which are written into ``out_dir`` when that folder is not shared. Each Ray run
asks for ``threads`` CPUs, and for one GPU when its config's ``device`` names a GPU (``cuda``,
``gpu:N``). A run whose node or worker dies is continued from its newest checkpoint on another
node (the run folders must then be on storage every node shares) and ends with the metrics it
would have had, as any resumed run; after :data:`NODE_RETRIES` losses the compare stops.

Resuming. A run is finished when its ``result.json`` exists: running the same compare again
skips it. A run folder without ``result.json`` continues from its newest checkpoint (as
``xmarl run --resume`` would), or starts over when it has none. A finished or partial run
whose saved config differs from what the compare asks for is an error, never silently reused.

Stopping. Ctrl-C or SIGTERM (to the compare's process, or to its whole process group) stops
every running run as a first Ctrl-C stops ``xmarl run``: each finishes its iteration and writes
a checkpoint (local workers are told through a shared event, Ray tasks are cancelled without
``force``, which interrupts them as Ctrl-C would), the compare waits for them (at most
:data:`STOP_TIMEOUT` seconds) and raises; a second signal stops everything at once. Running
the same compare again reuses the finished runs and continues the others.

Scripts that call :func:`compare` with the local executor must guard the call with
``if __name__ == "__main__":`` (the spawned workers import the main module).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import platform
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xmarl import registry
from xmarl.compare.parity import check_backends, installed_backends
from xmarl.config import flatten, load_config
from xmarl.config.loader import default_config
from xmarl.core.device import parse_device
from xmarl.errors import ConfigError, XmarlError, did_you_mean
from xmarl.files import atomic_write_text
from xmarl.training.checkpoint import CHECKPOINTS

EXECUTORS = ("local", "ray")
RUN_FILES = ("config.yaml", "metrics.jsonl", "result.json")  # result.json last: it marks a finished run
#: config keys that may differ between a saved run and the compare that reuses it
IGNORED_KEYS = {"out_dir", "name", "train.progress"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: written into a run folder by the compare that ran it: executor, parallel runs, host, seconds
EXECUTION = "compare_run.json"
#: seconds a stopped compare waits for its running runs to checkpoint
STOP_TIMEOUT = 300.0
#: times a Ray run whose node or worker dies is continued on another node before the compare gives up
NODE_RETRIES = 3
#: set in a local worker by the compare that started it, when that compare is stopped
_stop_event: Any = None


@dataclass(frozen=True)
class RunTask:
    """One cell of the matrix, as sent to a worker (plain data, picklable)."""

    method: str
    env: str
    backend: str
    seed: int
    run_dir: str  # absolute
    config: str | None  # absolute path of the user's YAML, if any
    overrides: dict[str, Any]
    resume: bool
    threads: int
    gpus: int = 0  # GPUs the run asks a Ray cluster for (its config's device names a GPU)

    @property
    def name(self) -> str:
        return Path(self.run_dir).name

    def again(self) -> RunTask:
        """The task that continues this run after its worker was lost: from its newest checkpoint,
        or from the start (its folder cleared) when it wrote none."""
        folder = Path(self.run_dir)
        resumable = any(p.is_dir() and not p.name.endswith(".partial") for p in (folder / CHECKPOINTS).glob("step_*"))
        if not resumable:
            shutil.rmtree(folder, ignore_errors=True)
        return dataclasses.replace(self, resume=resumable)


def _limit_threads(threads: int) -> None:
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def run_task(task: RunTask) -> dict[str, Any]:
    """Train one run (in a worker of either executor) and return its record: ``status``
    (``done``, ``failed`` or ``interrupted``), the run's small files and where it ran."""
    _limit_threads(task.threads)  # before the framework is imported by run()
    from xmarl.api import run

    info: dict[str, Any] = {"name": task.name, "host": socket.gethostname(), "pid": os.getpid()}
    if _stop_event is not None and _stop_event.is_set():  # the compare was stopped before this run began
        return {**info, "status": "interrupted"}
    t0 = time.perf_counter()
    try:
        if task.resume:
            run(overrides={"train.progress": False}, resume=task.run_dir)
        else:
            run(task.method, task.backend, task.env, task.config, task.overrides)
    except KeyboardInterrupt as exc:
        return {**info, "status": "interrupted", "signum": int(getattr(exc, "signum", signal.SIGINT))}
    except XmarlError as exc:
        return {**info, "status": "failed", "error": str(exc)}
    folder = Path(task.run_dir)
    files = {f: (folder / f).read_text() for f in RUN_FILES if (folder / f).is_file()}
    return {**info, "status": "done", "seconds": time.perf_counter() - t0, "files": files}


# -- executors: both take the tasks and yield run_task's records as runs finish ------------------

@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Thread limits in the environment that spawned workers inherit (restored afterwards)."""
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    _limit_threads(threads)
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def _watch_stop(stop: Any) -> None:
    """Local worker initializer: when the compare sets ``stop``, the run in progress stops as on a
    first SIGTERM (finishes its iteration, checkpoints) and no further run starts."""
    global _stop_event
    _stop_event = stop

    def watch() -> None:
        from xmarl.training.trainer import request_stop

        stop.wait()
        request_stop(signal.SIGTERM)

    threading.Thread(target=watch, name="xmarl-compare-stop", daemon=True).start()


def _local(tasks: list[RunTask], workers: int | None, address: str | None) -> Iterator[dict[str, Any]]:
    threads = tasks[0].threads if tasks else 1
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    with _thread_env(threads):
        pool = ctx.Pool(processes=workers, initializer=_watch_stop, initargs=(stop,))
    results = pool.imap_unordered(run_task, tasks)
    try:
        yield from results
        pool.close()
        pool.join()
    except BaseException:  # Ctrl-C, SIGTERM or a failed run: the running runs checkpoint, the others never start
        stop.set()
        pool.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        with contextlib.suppress(multiprocessing.TimeoutError):
            with contextlib.suppress(StopIteration):
                while True:
                    results.next(timeout=max(0.0, deadline - time.monotonic()))
            # every run has checkpointed: let the workers exit on their own (one that is killed leaves its
            # semaphores for the resource tracker to report on the console)
            pool.join()
        raise
    finally:
        pool.terminate()  # what is left (a second signal, or a run past STOP_TIMEOUT) stops now


def _ray_task(task: RunTask) -> dict[str, Any]:
    """:func:`run_task` as a Ray task. A run stopped by ``ray.cancel`` (which interrupts the task
    as Ctrl-C does) has written its checkpoint; it then ends with the interrupt, as Ray expects of
    a cancelled task (one that returns instead stops the driver with an internal Ray error)."""
    rec = run_task(task)
    if rec["status"] == "interrupted" and rec.get("signum") == signal.SIGINT:
        raise KeyboardInterrupt
    return rec


def _ray(tasks: list[RunTask], workers: int | None, address: str | None) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise XmarlError("executor 'ray' needs ray, which is not installed: pip install 'xmarl[ray]'") from None
    started = False
    if not ray.is_initialized():
        # workers' framework notices and Ray's own start-up notices stay off the console
        verbose = registry.verbose()
        quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}
        on_sigterm = signal.getsignal(signal.SIGTERM)
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        started = True
        if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)  # ray.init's own handler would end the driver at once
    remote = ray.remote(max_retries=0)(_ray_task)
    lost_node = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError,
                 ray.exceptions.ObjectLostError)
    queue, pending = list(tasks), []
    running: dict[Any, tuple[RunTask, int]] = {}  # ref -> (task, times its worker was lost)
    limit = workers or len(tasks)

    def submit(task: RunTask, lost: int = 0) -> None:
        ref = remote.options(num_cpus=task.threads, num_gpus=task.gpus).remote(task)
        pending.append(ref)
        running[ref] = (task, lost)

    try:
        while queue or pending:
            while queue and len(pending) < limit:
                submit(queue.pop(0))
            done, pending = ray.wait(pending, num_returns=1)
            task, lost = running.pop(done[0])
            try:
                record = ray.get(done[0])
            except lost_node as exc:  # its node or worker died: continue the run from its checkpoint elsewhere
                if lost >= NODE_RETRIES:
                    raise XmarlError(f"run {task.name} lost its Ray worker {lost + 1} times "
                                     f"({type(exc).__name__}); check the cluster's nodes") from None
                again = task.again()
                print(f"xmarl: run {task.name} lost its Ray worker ({type(exc).__name__}); continuing it "
                      f"{'from its newest checkpoint' if again.resume else 'from the start'} on another node",
                      file=sys.stderr, flush=True)
                submit(again, lost + 1)
                continue
            yield {**record, "lost_workers": lost}
    except BaseException:  # Ctrl-C, SIGTERM or a failed run: interrupt the running runs, which checkpoint
        for ref in pending:
            ray.cancel(ref)  # KeyboardInterrupt in the task: the trainer's first-Ctrl-C path
        if pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=STOP_TIMEOUT)
        raise
    finally:
        # only the runs still going past STOP_TIMEOUT: cancelling a task that has just finished races
        # with Ray's own completion of it, which can crash the driver (a failed internal check)
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


# -- planning ---------------------------------------------------------------------------------

def _config_difference(expected: dict[str, Any], saved_path: Path) -> str | None:
    """The first key where a saved run's config differs from the expected one, as text. A key the
    saved config lacks and that is asked at its default is one xmarl gained after the run was
    made (its default keeps the behaviour the run had), not a difference."""
    if not saved_path.is_file():
        return None
    saved = flatten(yaml.safe_load(saved_path.read_text()) or {})
    want = flatten(expected)
    defaults: dict[str, Any] | None = None
    for key in sorted(set(saved) | set(want)):
        if key in IGNORED_KEYS:
            continue
        if key not in saved:
            defaults = flatten(default_config()[0]) if defaults is None else defaults
            if key in defaults and defaults[key] == want[key]:
                continue
        if saved.get(key, "<unset>") != want.get(key, "<unset>"):
            return f"{key}={saved.get(key, '<unset>')!r} there, {want.get(key, '<unset>')!r} asked"
    return None


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds={seeds}: pass a number of seeds >= 1 or a list of seeds")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"seeds={list(seeds)}: pass a number of seeds >= 1 or a list of distinct seeds")
    return out


def _versions(backends: list[str]) -> dict[str, str]:
    out = {"xmarl": _version("xmarl"), "python": platform.python_version(), "numpy": np.__version__}
    for b in backends:  # the distribution may carry a suffix (tensorflow-cpu)
        out[b] = next((v for v in (_version(b), _version(f"{b}-cpu")) if v != "?"), "?")
    return out


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _command(methods: list[str], envs: list[str], backends: list[str], seeds: list[int], steps: int | None,
             overrides: dict[str, Any], config: str | None, out_dir: Path, executor: str, workers: int | None,
             threads: int) -> str:
    parts = ["xmarl", "compare"]
    for m in methods:
        parts += ["-m", m]
    for e in envs:
        parts += ["-e", e]
    parts += ["-b", ",".join(backends)]
    parts += ["--seeds", str(len(seeds)) if seeds == list(range(len(seeds))) else ",".join(map(str, seeds))]
    if steps is not None:  # None: the runs' budgets differ, each its shipped config's
        parts += ["--steps", str(steps)]
    if config:
        parts += ["-c", config]
    for k, v in overrides.items():
        parts += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    parts += ["--out-dir", str(out_dir), "--executor", executor]
    if workers:
        parts += ["--workers", str(workers)]
    if threads != 1:
        parts += ["--threads", str(threads)]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass
class CompareResult:
    """What :func:`compare` leaves: the report folder, its files and its numbers.

    ``ran``, ``resumed`` and ``skipped`` name the runs this call trained from scratch,
    continued from a checkpoint, and found finished.
    """

    out_dir: Path
    report: Path
    figures: list[Path]
    summary: dict[str, Any]
    ran: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def table(self) -> str:
        """Final return per task and backend, as printed by ``xmarl compare``."""
        lines = []
        for task in self.summary["tasks"]:
            lines.append(f"{task['method']} on {task['env']}: final return (mean [95% CI], IQM [95% CI])")
            for b, d in task["final_return"].items():
                lines.append(f"  {b:<12} n={d['n']}  mean {d['mean']:.3f} [{d['mean_ci'][0]:.3f}, "
                             f"{d['mean_ci'][1]:.3f}]  IQM {d['iqm']:.3f} [{d['iqm_ci'][0]:.3f}, {d['iqm_ci'][1]:.3f}]"
                             f"  {task['throughput'][b]['steps_per_sec']:.0f} env-steps/s")
            lines.append(f"  verdict: {task['test']['verdict']}")
        return "\n".join(lines)

    def summary_text(self) -> str:
        return (f"{self.table()}\nruns: {len(self.ran)} trained, {len(self.resumed)} resumed, "
                f"{len(self.skipped)} already finished\nreport: {self.report}")


@dataclass(frozen=True)
class CompareArgs:
    """:func:`compare`'s arguments once :func:`validate` has checked and normalised them."""

    methods: list[str]
    envs: list[str]  # as given; empty: each method's configured env
    backends: list[str]  # installed, without repeats
    seeds: list[int]
    overrides: dict[str, Any]  # every run's overrides, with train.steps and train.threads set
    given_overrides: dict[str, Any]  # as passed, for the command line in the report
    config: str | None  # as passed (report), or None
    config_path: str | None  # absolute path of an existing YAML file, or None
    out_dir: str | os.PathLike[str] | None  # as passed; None: compare/<methods>-<envs>
    executor: str
    workers: int | None  # as passed
    address: str | None
    threads: int  # framework threads per run (train.threads when overridden)
    progress: bool


@dataclass
class ComparePlan:
    """Every run of a compare, decided (and each run's config validated) before any file is written."""

    args: CompareArgs
    root: Path  # the report folder
    runs_dir: Path  # absolute for Ray (a worker may start in another folder)
    pairs: list[tuple[str, str]]  # (method, env) tasks, in report order
    tasks: list[RunTask]  # every run: pairs x seeds x backends
    todo: list[RunTask]  # the runs to train or continue
    skipped: list[str]  # finished runs, reused
    resumed: list[str]  # runs continued from their newest checkpoint
    steps: list[int]  # the distinct train.steps of the runs, sorted
    workers: int | None  # parallel runs (None: Ray schedules them)

    @property
    def spec(self) -> dict[str, Any]:
        """What was asked, as written to ``compare.json``."""
        a = self.args
        return {"methods": a.methods, "envs": [e for _, e in self.pairs], "backends": a.backends, "seeds": a.seeds,
                "steps": self.steps, "overrides": dict(a.overrides), "config": a.config_path,
                "executor": a.executor, "workers": self.workers, "threads": a.threads, "address": a.address}


def compare(
    method: str | Sequence[str],
    backends: Sequence[str] | None = None,
    env: str | Sequence[str] | None = None,
    seeds: int | Sequence[int] = 3,
    steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int = 1,
    progress: bool = True,
) -> CompareResult:
    """Run ``method`` × ``env`` × ``backends`` × ``seeds`` with :func:`xmarl.run` and write a report.

    ``method``/``env``: a name or several (``env`` defaults to each method's configured env).
    ``backends``: default every installed backend. ``seeds``: a count N (seeds 0..N-1) or a
    list. ``steps``, ``overrides`` (dotted keys) and ``config`` (a YAML file) apply to every
    run, as in :func:`xmarl.run`. ``out_dir``: the report folder (default
    ``compare/<methods>-<envs>``). ``executor``: ``"local"`` (a spawn process pool) or
    ``"ray"``; ``workers``: parallel runs (local default: cores // threads; Ray: a local Ray
    gets that many CPUs); ``address``: a Ray cluster to join; ``threads``: framework threads
    per run. Finished runs in ``out_dir`` are reused and interrupted ones continued (see the
    module docstring). Returns a :class:`CompareResult`.

    The four steps, in order: :func:`validate`, :func:`plan`, :func:`execute`, :func:`write_report`.
    """
    args = validate(method, backends, env, seeds, steps, overrides, config=config, out_dir=out_dir,
                    executor=executor, workers=workers, address=address, threads=threads, progress=progress)
    planned = plan(args)
    ran = execute(planned)
    return write_report(planned, ran)


def validate(
    method: str | Sequence[str],
    backends: Sequence[str] | None = None,
    env: str | Sequence[str] | None = None,
    seeds: int | Sequence[int] = 3,
    steps: int | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int = 1,
    progress: bool = True,
) -> CompareArgs:
    """Step 1: check :func:`compare`'s arguments (same names and defaults) and the backends, raising
    a one-line error for the first bad one; returns them normalised as :class:`CompareArgs`.
    Reads no config beyond checking that ``config`` exists, and writes nothing."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}'{did_you_mean(executor, EXECUTORS)} "
                          f"(valid: {', '.join(EXECUTORS)})")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers={workers}: pass a number of parallel runs >= 1")
    if threads < 1:
        raise ConfigError(f"threads={threads}: pass a number of framework threads per run >= 1")
    ov = _run_overrides(overrides, steps)
    if isinstance(ov.get("train.threads"), int):  # a bad value is left to the config schema's message
        threads = ov["train.threads"]
    ov.setdefault("train.threads", threads)
    seed_list = _seeds(seeds)
    methods = _as_list(method)
    for m in methods:
        registry.get("method", m)  # unknown method -> closest name
    chosen = check_backends(installed_backends() if backends is None else _as_list(backends))
    if not chosen:
        raise XmarlError("no backend is installed: pip install 'xmarl[torch]'")
    config_path = str(Path(config).resolve()) if config is not None else None
    if config_path is not None and not Path(config_path).is_file():
        raise ConfigError(f"config file '{config}' does not exist; pass the path of a YAML file")
    return CompareArgs(methods, _as_list(env) if env is not None else [], chosen, seed_list, ov,
                       dict(overrides or {}), str(config) if config else None, config_path,
                       out_dir, executor, workers, address, threads, progress)


def _run_overrides(overrides: dict[str, Any] | None, steps: int | None) -> dict[str, Any]:
    """The overrides every run shares (``steps`` as ``train.steps``); an error for keys compare sets per run."""
    ov = dict(overrides or {})
    for key, arg in (("seed", "seeds"), ("out_dir", "out_dir"), ("name", "out_dir"), ("backend", "backends"),
                     ("method", "method"), ("env", "env")):
        if key in ov:
            raise ConfigError(f"override '{key}' is set per run by compare; pass {arg}=... instead")
    if steps is not None:
        ov["train.steps"] = steps
    return ov


def plan(args: CompareArgs) -> ComparePlan:
    """Step 2: the matrix of runs (method × env × seed × backend, in that nesting) with each run's
    folder, overrides and validated config, which runs are finished, to resume or to train, and
    how many run in parallel. Reads configs and run folders; writes and runs nothing. Raises
    when a config is invalid or a finished or partial run was made with another config."""
    pairs = [(m, e) for m in args.methods for e in (args.envs or [load_config(m, config=args.config_path).env])]
    tag = "+".join(args.methods) + "-" + "+".join(dict.fromkeys(e.replace("/", "_") for _, e in pairs))
    root = Path(args.out_dir) if args.out_dir is not None else Path("compare") / tag
    # a Ray worker may start in another folder: it gets an absolute path; local runs keep the path as given
    runs_dir = root / "runs" if args.executor == "local" else (root / "runs").resolve()
    cells = [_plan_run(args, runs_dir, m, e, b, s) for m, e in pairs for s in args.seeds for b in args.backends]
    tasks = [task for task, _, _ in cells]
    todo = [task for task, finished, _ in cells if not finished]
    workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 1) // args.threads)
    workers = max(1, min(workers, len(todo))) if args.executor == "local" or args.workers is not None else None
    return ComparePlan(args, root, runs_dir, pairs, tasks, todo, [t.name for t, finished, _ in cells if finished],
                       [t.name for t in todo if t.resume], sorted({n for _, _, n in cells}), workers)


def _plan_run(args: CompareArgs, runs_dir: Path, method: str, env: str, backend: str,
              seed: int) -> tuple[RunTask, bool, int]:
    """One run of the matrix, whether it is finished, and its ``train.steps``; an error if its
    folder holds a run made with another config."""
    name = f"{method}-{env.replace('/', '_')}-{backend}-s{seed}"
    run_ov = {**args.overrides, "seed": seed, "out_dir": str(runs_dir), "name": name, "train.progress": False}
    cfg = load_config(method, env, backend, args.config_path, run_ov)
    folder = runs_dir / name
    finished = (folder / "result.json").is_file()
    can_resume = any(p.is_dir() and not p.name.endswith(".partial") for p in (folder / CHECKPOINTS).glob("step_*"))
    if finished or can_resume:
        differ = _config_difference(cfg.model_dump(mode="json"), folder / "config.yaml")
        if differ is not None:
            raise XmarlError(f"run folder {folder} was made with another config ({differ}); "
                             "pass another out_dir or delete that folder")
    gpus = int(parse_device(cfg.device).kind == "gpu")  # a run that names a GPU reserves one on a Ray cluster
    task = RunTask(method, env, backend, seed, str(folder), args.config_path, run_ov, can_resume and not finished,
                   args.threads, gpus)
    return task, finished, cfg.train.steps


def execute(plan: ComparePlan) -> list[str]:
    """Step 3: create the report folder, clear runs that never got going, write ``compare.json``
    and train the plan's unfinished runs on its executor (local process pool or Ray), storing
    each finished run's files. Returns the names of the runs trained from scratch (resumed ones
    are ``plan.resumed``). Raises on the first failed run; Ctrl-C leaves a resumable compare."""
    args = plan.args
    plan.root.mkdir(parents=True, exist_ok=True)
    for task in plan.todo:  # a folder without result.json or checkpoint is a run that never got going
        if not task.resume and Path(task.run_dir).exists():
            shutil.rmtree(task.run_dir)
    atomic_write_text(plan.root / "compare.json", json.dumps(plan.spec, indent=1, default=str))
    if plan.skipped:
        _say(args.progress, f"xmarl compare: {len(plan.skipped)} of {len(plan.tasks)} runs already finished in "
                            f"{plan.runs_dir}")
    ran: list[str] = []
    if not plan.todo:
        return ran
    _say(args.progress, f"xmarl compare: {len(plan.todo)} runs on the {args.executor} executor"
                        + (f" with {plan.workers} workers" if plan.workers else ""))
    with _sigterm_raises():
        records = (_local if args.executor == "local" else _ray)(plan.todo, plan.workers, args.address)
        t0 = time.perf_counter()
        try:
            for k, rec in enumerate(records, 1):
                _keep_record(plan, rec)
                ran.append(rec["name"])
                final = json.loads(rec["files"]["result.json"])["final_metrics"]
                _say(args.progress, f"[{k}/{len(plan.todo)}] {rec['name']}: final return "
                                    f"{final.get('eval_return', float('nan')):.3f}, {rec['seconds']:.1f}s "
                                    f"({time.perf_counter() - t0:.0f}s elapsed)")
        except KeyboardInterrupt:
            # said even without progress: the one line that tells how to continue
            _say(True, f"xmarl compare: interrupted; {len(plan.skipped) + len(ran)} of {len(plan.tasks)} runs are "
                       "finished, run the same compare again to resume")
            raise
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()  # a stopped compare waits here for its running runs' checkpoints
    return [n for n in ran if n not in plan.resumed]


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While active (in the main thread), SIGTERM raises :class:`~xmarl.training.trainer.Preempted`
    in the compare's process, as Ctrl-C raises KeyboardInterrupt, every time it arrives. (Ray turns
    it into a plain KeyboardInterrupt on its way through ``ray.wait``: that one leaves as
    Preempted again, so ``xmarl compare`` exits 143.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from xmarl.training.trainer import Preempted

    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise Preempted(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt as exc:
        if received and not isinstance(exc, Preempted):
            raise Preempted(received[0]) from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _keep_record(plan: ComparePlan, rec: dict[str, Any]) -> None:
    """Store a worker's record of a finished run (its files and how it ran); an error for a run
    that failed or was interrupted. A run that a signal interrupted (Ctrl-C reaches the workers of
    the compare's process group as it reaches the compare, which may read the worker's record before
    its own KeyboardInterrupt arrives) stops the compare as that signal does: exit 130 or 143."""
    if rec["status"] == "interrupted" and rec.get("signum") is not None:
        from xmarl.training.trainer import Preempted

        raise Preempted(int(rec["signum"]))
    if rec["status"] != "done":
        what = rec.get("error", "interrupted")
        raise XmarlError(f"run {rec['name']} {rec['status']}: {what}; finished runs are kept in "
                         f"{plan.runs_dir}, run the same compare again to resume")
    _store(plan.runs_dir / rec["name"], rec["files"])
    atomic_write_text(plan.runs_dir / rec["name"] / EXECUTION, json.dumps(
        {"executor": plan.args.executor, "workers": plan.workers, "threads": plan.args.threads, "host": rec["host"],
         "seconds": rec["seconds"], "resumed": rec["name"] in plan.resumed,
         "lost_workers": rec.get("lost_workers", 0)}))


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def write_report(plan: ComparePlan, ran: list[str]) -> CompareResult:
    """Step 4: statistics over every run of the plan (finished now or before), the learning-curve
    PNGs, ``report.md``, ``summary.json`` and ``runs.csv`` in ``plan.root``; returns the
    :class:`CompareResult` (``ran``: what :func:`execute` trained from scratch)."""
    a = plan.args
    command = _command(a.methods, a.envs, a.backends, a.seeds, plan.steps[0] if len(plan.steps) == 1 else None,
                       a.given_overrides, a.config, plan.root, a.executor, a.workers, a.threads)
    summary, figures = _report(plan.root, plan.runs_dir, plan.tasks, plan.pairs, a.backends, a.seeds, plan.spec,
                               command)
    return CompareResult(plan.root, plan.root / "report.md", figures, summary, ran, plan.resumed, plan.skipped)


def _store(folder: Path, files: dict[str, str]) -> None:
    """Write a run's files sent back by a worker when this machine does not have them (a Ray
    worker on another node); result.json last, so the run only counts once it is whole."""
    if (folder / "result.json").is_file():
        return
    for fname in RUN_FILES:
        if fname in files:
            atomic_write_text(folder / fname, files[fname])


def _clean(x: Any) -> Any:
    """NaN and infinities to None, recursively, so summary.json is strict JSON."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _report(root: Path, runs_dir: Path, tasks: list[RunTask], pairs: list[tuple[str, str]], backends: list[str],
            seeds: list[int], spec: dict[str, Any], command: str) -> tuple[dict[str, Any], list[Path]]:
    from xmarl.compare import report, stats

    runs = []
    executions: dict[str, int] = {}
    for t in tasks:
        result = json.loads((Path(t.run_dir) / "result.json").read_text())
        ex_path = Path(t.run_dir) / EXECUTION
        ex = json.loads(ex_path.read_text()) if ex_path.is_file() else {}
        how = (f"{ex['executor']}, {ex['workers'] or 'Ray-scheduled'} parallel runs, {ex['threads']} thread(s) each"
               if ex else "outside this compare")
        executions[how] = executions.get(how, 0) + 1
        fm = result["final_metrics"]
        runs.append({"method": t.method, "env": t.env, "backend": t.backend, "seed": t.seed, "name": t.name,
                     "folder": Path(t.run_dir).resolve().relative_to(root.resolve()).as_posix(),
                     "final_return": fm.get("eval_return", float("nan")), "train_return": fm.get("train_return"),
                     "steps": fm.get("steps"), "updates": fm.get("updates"), "wall_time": fm.get("wall_time", 0.0),
                     "steps_per_sec": fm.get("steps_per_sec", 0.0), "curve": result.get("curve", []),
                     # per group, episode length, the env's own success measures
                     "eval": {k: v for k, v in fm.items() if k.startswith("eval_") and k != "eval_return"}})
    summary_tasks, figures = [], []
    for m, e in pairs:
        mine = [r for r in runs if r["method"] == m and r["env"] == e]
        by_b = {b: [r for r in mine if r["backend"] == b] for b in backends}
        finals = {b: [r["final_return"] for r in rs] for b, rs in by_b.items()}
        bands = {}
        for b, rs in by_b.items():
            band = stats.curve_band([[c[0] for c in r["curve"]] for r in rs], [[c[1] for c in r["curve"]] for r in rs])
            bands[b] = {**band, "n": len(rs)}
        fig_name = f"curves_{m}_{e.replace('/', '_')}.png"
        figures.append(report.plot_curves(bands, f"{m} on {e}: {len(seeds)} seeds per backend", root / fig_name))
        throughput = {}
        for b, rs in by_b.items():
            wall = np.array([r["wall_time"] for r in rs], np.float64)
            sps = np.array([r["steps_per_sec"] for r in rs], np.float64)
            throughput[b] = {"wall_time": float(wall.mean()), "wall_time_sd": float(wall.std(ddof=1)) if len(rs) > 1
                             else float("nan"), "steps_per_sec": float(sps.mean()),
                             "steps_per_sec_sd": float(sps.std(ddof=1)) if len(rs) > 1 else float("nan")}
        shared = sorted(set.intersection(*(set(r["eval"]) for r in mine))) if mine else []
        evals = {k: {b: {"mean": float(np.mean([r["eval"][k] for r in rs])),
                         "std": float(np.std([r["eval"][k] for r in rs], ddof=1)) if len(rs) > 1 else float("nan")}
                     for b, rs in by_b.items() if rs} for k in shared}
        every = [v for vs in finals.values() for v in vs if np.isfinite(v)]
        taus = np.linspace(min(every), max(every), 41).tolist() if every else []
        profiles = {b: stats.performance_profile(v, taus) for b, v in finals.items() if v}
        profile_name = f"profiles_{m}_{e.replace('/', '_')}.png"
        figures.append(report.plot_curves(
            {b: {"steps": pr["tau"], "mean": pr["fraction"], "lo": pr["lo"], "hi": pr["hi"], "n": len(finals[b])}
             for b, pr in profiles.items()}, f"{m} on {e}: runs above each final return",
            root / profile_name, ylabel="fraction of runs above", xlabel="final return (per agent)"))
        improvement = [{"a": a, "b": b, **stats.probability_of_improvement(finals[a], finals[b])}
                       for i, a in enumerate(backends) for b in backends[i + 1:] if finals[a] and finals[b]]
        summary_tasks.append({"method": m, "env": e, "figure": fig_name, "profile_figure": profile_name,
                              "eval": evals, "final_return": {b: stats.describe(v) for b, v in finals.items()},
                              "test": stats.backends_differ(finals), "improvement": improvement,
                              "profiles": profiles, "throughput": throughput, "curves": bands})
    steps = spec["steps"][0] if len(spec["steps"]) == 1 else spec["steps"]
    summary = {"methods": spec["methods"], "envs": list(dict.fromkeys(e for _, e in pairs)), "backends": backends,
               "seeds": seeds, "steps": steps, "execution": executions,
               "confidence": stats.CONFIDENCE, "versions": _versions(backends), "command": command,
               "tasks": summary_tasks, "runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs]}
    summary = _clean(summary)
    report.write_marl_eval({"runs": runs}, root / "marl_eval.json")
    report.write_summary(summary, root / "summary.json")
    report.write_runs_csv(summary["runs"], root / "runs.csv")
    atomic_write_text(root / "report.md", report.markdown(summary))
    report.write_html(root / "report.md", f"xmarl compare: {', '.join(summary['methods'])}")
    return summary, figures


def rewrite_report(root: str | os.PathLike[str]) -> CompareResult:
    """The report of the compare in folder ``root`` made again from its saved runs (no training):
    the curves, ``report.md`` / ``report.html``, ``summary.json`` and ``runs.csv``. A one-line
    error when a run of the compare is missing or unfinished."""
    root = Path(root)
    try:
        spec = json.loads((root / "compare.json").read_text())
        methods, envs, backends, seeds = spec["methods"], spec["envs"], spec["backends"], spec["seeds"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise XmarlError(f"'{root}' is not a compare folder ({type(exc).__name__}: {exc}); pass the out_dir of an "
                         "xmarl compare") from None
    per = max(1, len(envs) // max(1, len(methods)))  # envs per method (every method has the same ones)
    pairs = [(methods[i // per], e) for i, e in enumerate(envs)]
    runs_dir = root / "runs"
    tasks = [RunTask(m, e, b, s, str(runs_dir / f"{m}-{e.replace('/', '_')}-{b}-s{s}"), None, {}, False, 1)
             for m, e in pairs for s in seeds for b in backends]
    missing = [t.name for t in tasks if not (Path(t.run_dir) / "result.json").is_file()]
    if missing:
        raise XmarlError(f"run {missing[0]} of the compare in '{root}' is not finished ({len(missing)} in all); "
                         "run the same compare again to finish them")
    steps = spec["steps"][0] if len(spec.get("steps", [])) == 1 else None
    given = {k: v for k, v in spec.get("overrides", {}).items() if k not in ("train.threads", "train.steps")}
    command = _command(methods, list(dict.fromkeys(envs)), backends, seeds, steps, given, spec.get("config"), root,
                       spec.get("executor", "local"), spec.get("workers"), spec.get("threads", 1))
    summary, figures = _report(root, runs_dir, tasks, pairs, backends, seeds, spec, command)
    return CompareResult(root, root / "report.md", figures, summary)


__all__ = ["compare", "validate", "plan", "execute", "write_report", "rewrite_report", "CompareArgs",
           "ComparePlan", "CompareResult", "RunTask", "run_task", "EXECUTORS"]
