"""``python -m benchmarks run|list|report``: the command line of the suite.

Imports neither torch nor tensorflow until a run needs one.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import signal
import sys
import threading
from pathlib import Path

from tqdm import tqdm

import tasks
from benchmarks import executors, runner, suite
from benchmarks.records import FINAL
from benchmarks.store import Store, StoreError, WriteError, check_output
from benchmarks.store import lock as store_lock
from models import checkpoint, reference, registry
from tasks.base import TaskError


class UsageError(ValueError):
    """Bad input from the command line: one line, exit code 2."""


MAX_STEPS = 10**9
MAX_CHECKPOINT_MINUTES = 10**6
EXIT_STATUS = """exit status (run, report, throughput):
  0  every run ended ok or diverged (a run whose framework is not installed is skipped)
  1  a run ended in error, or was not scored because its reference runs had not all
     finished (each listed with its reason; a rerun retries them), report left out a bad
     record, or an output (a file, standard output) could not be written
  2  bad input (one line naming it), refused before anything is trained or written
  130, 143  run stopped by SIGINT (Ctrl-C) or SIGTERM: finished records and each unfinished
     program's checkpoint are kept; the same command resumes"""


def _parse_value(text: str):
    """``3`` -> 3, ``0.5`` -> 0.5, ``1,2`` -> [1, 2], ``-6,-2+2,6`` -> [[-6,-2],[2,6]]."""
    def scalar(s):
        for cast in (int, float):
            try:
                return cast(s)
            except ValueError:
                pass
        return s

    if "+" in text:
        return [[scalar(v) for v in part.split(",")] for part in text.split("+")]
    if "," in text:
        return [scalar(v) for v in text.split(",")]
    return scalar(text)


def _task_grid(args, task_names: list[str]) -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --param {item!r}; expected NAME=VALUE, e.g. "
                             f"interpolation_range=1,2")
        if key in grid:
            raise UsageError(f"--param {key} given twice; give each parameter once")
        grid[key] = [_parse_value(value)]
    known = {k for cls in tasks.TASKS.values() for k in cls.parameters}
    unknown = set(grid) - known
    if unknown:
        raise UsageError(f"unknown task parameter(s) {sorted(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    taken = {k for name in task_names for k in tasks.get(name).parameters}
    unused = sorted(set(grid) - taken)
    if unused:
        raise UsageError(f"--param {', '.join(unused)}: not a parameter of the selected "
                         f"task(s) {', '.join(task_names)}; theirs: {', '.join(sorted(taken))}")
    if "op" in grid and not isinstance(grid["op"][0], str):
        raise UsageError(f"bad --param op={grid['op'][0]!r}; expected one op name "
                         f"(for several: --ops add,sub)")
    if args.ops:
        if "op" not in taken:
            raise UsageError(f"--ops {args.ops}: no selected task takes an op "
                             f"({', '.join(task_names)}); drop --ops")
        ops = suite.split_names(args.ops, (), "op")
        if "op" in grid and grid["op"] != ops:
            raise UsageError(f"--param op={grid['op'][0]} contradicts --ops {args.ops}; "
                             f"give one of them")
        grid["op"] = ops
    return grid


def _device(device: str) -> str:
    """cpu, cuda or cuda:N; gpu[:N] (TensorFlow's word) is read as cuda[:N]."""
    if not re.fullmatch(r"cpu|(cuda|gpu)(:\d+)?", device):
        raise UsageError(f"bad --device {device!r}; expected cpu, cuda or cuda:N")
    return re.sub(r"^gpu", "cuda", device)


def _check_device(device: str, frameworks=()) -> None:
    """A GPU device must be one that each selected (installed) framework sees: it is
    imported only for this question."""
    if device == "cpu":
        return
    index = int(device.partition(":")[2] or 0)
    for fw in frameworks:
        if registry.framework_missing(fw):
            continue  # its runs are recorded as skipped
        build = ""
        if fw == "torch":
            import torch

            found = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if torch.version.cuda is None:
                build = f" (torch {torch.__version__} is a CPU build: install its CUDA build)"
        else:
            import tensorflow as tf

            found = len(tf.config.list_physical_devices("GPU"))
        if index >= found:
            raise UsageError(f"--device {device}: {fw} sees {found} GPU(s) on this machine"
                             f"{build}{'' if found else '; use --device cpu'}")


def cmd_list(args) -> int:
    print("tasks (parameters with defaults; default models; what the task changes per budget):")
    for name, cls in tasks.TASKS.items():
        params = ", ".join(f"{k}={v}" for k, v in cls.parameters.items())
        print(f"  {name}  ({params})")
        print(f"      models: {','.join(cls.default_models)}")
        for budget, change in cls.budgets.items():
            print(f"      {budget}: " + ", ".join(f"{k}={v:g}" if isinstance(v, float)
                                                else f"{k}={v}" for k, v in change.items()))
    print("units (static task: a model is UNIT, i.e. UNIT->UNIT, or UNIT-UNIT, e.g. nau-nmu):")
    for name, spec in reference.UNITS.items():
        print(f"  {name:8s} {spec.title}")
    print("recurrent cells (the cores of the sequence tasks):")
    for name, spec in reference.CELLS.items():
        print(f"  {name:8s} {spec.title}")
    print("frameworks:")
    for fw in registry.FRAMEWORKS:
        missing = registry.framework_missing(fw)
        print(f"  {fw:8s} {'not installed: ' + missing if missing else 'installed'}")
    print("budgets (the static task's; the lines under each task above say what it changes):")
    for b in suite.BUDGETS.values():
        print(f"  {b.name:8s} {b.steps} steps, eval every {b.eval_interval}, {b.seeds} seeds, "
              f"lr {b.lr:g}: {b.description}")
    print(f"executors: {', '.join(executors.EXECUTORS)}")
    print("groups (runs trained together, up to --max-replicas; one record per run):")
    for name, cls in tasks.TASKS.items():
        also = (f"; also across {', '.join(cls.program_params)} unless --common-data"
                if cls.program_params else "")
        print(f"  {name:20s} a model's seeds{also}")
    return 0


def cmd_run(args) -> int:
    budget = suite.get_budget(args.budget)
    seeds = suite.parse_seeds(args.seeds) if args.seeds is not None else None
    task_names = suite.split_names(args.tasks, tasks.TASKS, "task") or list(tasks.TASKS)
    models = suite.split_names(args.units, reference.UNITS, "unit")
    frameworks = suite.split_names(args.frameworks, registry.FRAMEWORKS, "framework")
    for name in task_names:
        tasks.get(name)
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise UsageError(f"bad --steps {args.steps}; expected a positive integer up to "
                         f"{MAX_STEPS:,} (200x the published protocol's 5e6)")
    if args.mnist_dir is not None:
        tasks.digits.use_mnist_dir(args.mnist_dir)
    if args.max_replicas < 1:
        raise UsageError(f"bad --max-replicas {args.max_replicas}; expected a positive integer")
    if not 0 <= args.checkpoint_every <= MAX_CHECKPOINT_MINUTES:
        raise UsageError(f"bad --checkpoint-every {args.checkpoint_every:g}; expected minutes "
                         f"from 0 (off) to {MAX_CHECKPOINT_MINUTES:,}")
    executor = executors.get(args.executor, workers=args.workers, scheduler=args.scheduler)
    grid = _task_grid(args, task_names)
    args.device = _device(args.device)
    specs = suite.expand(task_names, models, frameworks, seeds, budget, grid,
                         common_data=args.common_data, steps=args.steps, device=args.device)
    staged = suite.stages(specs, steps=args.steps)  # the runs others are scored against first
    everything = staged.all
    _preflight(everything, args.max_replicas)
    _check_device(args.device, sorted({s.framework for s in everything}))
    store = Store(args.results or f"results/{budget.name}")
    held = store_lock(store.root)  # noqa: F841 (held until this command returns)
    pending = [[s for s in stage if args.force or not store.is_final(s.id)
                or _awaits_references(store, s, staged)] for stage in staged.runs]
    for path in store.corrupt:
        print(f"warning: record {path} left out ({store.problems.get(path, 'unreadable')}); "
              f"it will be rerun", file=sys.stderr)
    todo = sum(map(len, pending))
    print(f"{len(everything)} runs, {len(everything) - todo} already done, "
          f"{todo} to train -> {store.root}", flush=True)  # a closed stdout: now
    if len(staged.runs) > 1:
        for k, (stage, waiting) in enumerate(zip(staged.runs, pending)):
            print(f"  {_stage_name(k, len(staged.runs))}: {len(stage)} runs, "
                  f"{len(stage) - len(waiting)} already done, {len(waiting)} to train")
    plan = checkpoint.Plan(str(store.root / checkpoint.DIRECTORY), 60.0 * args.checkpoint_every)
    if not todo:  # nothing to train: start no pool or cluster
        executor = executors.Local()
    written: set[str] = set()
    unwritten: list[WriteError] = []
    bars: list = []
    stopped = _stop_on_signals(executor)
    try:
        with executor:
            for k, waiting in enumerate(pending):
                # after the barrier: the earlier stages' records are all written
                work = _works(waiting, staged, store, args.max_replicas, args.force)
                if not work:
                    continue
                bars.append(tqdm(total=sum(s.steps for w in work for s in w.specs),
                                 unit="seed-step", unit_scale=True,
                                 disable=args.quiet or None, dynamic_ncols=True,
                                 **({"desc": _stage_name(k, len(pending))}
                                    if len(pending) > 1 else {})))
                _train_stage(executor, work, bars[-1], plan, store, written, unwritten)
                if unwritten:  # train nothing more that could not be kept
                    break
    except KeyboardInterrupt:
        for bar in bars:
            bar.close()
        kept = sorted(Path(plan.directory).glob("*.npz"))
        size = sum(p.stat().st_size for p in kept)
        print(f"\ninterrupted: {len(written)} records written to {store.root}"
              + (f", {len(kept)} checkpoint(s) of unfinished programs kept "
                 f"({size / 1e6:.1f} MB)" if kept else "")
              + "; run the same command again to resume", file=sys.stderr)
        return 128 + stopped.get("signal", signal.SIGINT)
    finally:
        for bar in bars:
            bar.close()
        stopped["restore"]()
    if unwritten:
        print(f"python -m benchmarks run: error: {unwritten[0]}; {len(written)} records "
              f"written, {len(unwritten)} finished runs not (their programs' checkpoints are "
              f"kept); free space and run the same command again", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):  # empty once every program's records are written
        Path(plan.directory).rmdir()
    return _exit_status(_print_summary(store.root, {s.id for s in everything}, staged))


def _stage_name(k: int, n: int) -> str:
    return f"stage {k + 1}/{n}" + (" (with the references)" if k < n - 1 else "")


def _awaits_references(store: Store, spec, staged: suite.Stages) -> bool:
    """A finished run that could not be scored: its references had not all finished."""
    if spec.id not in staged.references:
        return False
    record = store.read(spec.id)
    return record is not None and record.get("status") in FINAL \
        and (record.get("metrics") or {}).get("references_ok") is False


def _works(specs, staged: suite.Stages, store: Store, max_replicas: int,
           force: bool) -> list[runner.Work]:
    """The groups of one stage, each with the records of the runs it is scored against
    (read now: the earlier stages have finished). A finished run waiting for its
    references trains again only if they now score it."""
    out, scores = [], {}
    for group in suite.groups(specs, max_replicas):
        by_refs: dict = {}
        for spec in group:
            by_refs.setdefault(staged.references.get(spec.id), []).append(spec)
        for refs, members in by_refs.items():
            if refs is None:
                out.append(runner.Work(members))
                continue
            views = tuple(_reference_record(store, r) for r in refs)
            if not force:
                key = (members[0].task, members[0].task_params, refs)
                if key not in scores:
                    task = tasks.get(members[0].task)(**members[0].params)
                    scores[key] = not task.use_references(list(views))
                members = [s for s in members if scores[key] or not store.is_final(s.id)]
            if members:
                out.append(runner.Work(members, views))
    return out


def _reference_record(store: Store, spec) -> dict:
    record = store.read(spec.id)
    if record is None:
        return {"id": spec.id, "unit": spec.unit, "framework": spec.framework,
                "seed": spec.seed, "task_params": spec.params, "status": "missing",
                "reason": "no record", "metrics": {}}
    return runner.reference_view(record)


def _train_stage(executor, work: list, bar, plan, store: Store, written: set,
                 unwritten: list) -> None:
    """Train one stage's groups on the executor and write their records as they finish;
    returns once every group has (or a record could not be written)."""
    wanted = {s.id for w in work for s in w.specs}
    if executor.in_process:  # live progress per chunk of steps
        fn = functools.partial(runner.run_work, progress=bar.update, checkpoints=plan)
    else:  # workers cannot reach the bar: it advances per finished group
        fn = functools.partial(runner.run_work, checkpoints=plan)
    for item, records in executor.map(fn, work):
        group = item.specs
        # a task retried after its worker died may come back twice: write each id once
        fresh = [r for r in records if r["id"] in wanted and r["id"] not in written]
        for record in fresh:
            try:  # on a full disk, every finished record that fits is still kept
                store.write(record)
            except WriteError as err:
                unwritten.append(err)
                continue
            written.add(record["id"])
            if record["status"] in ("error", "skipped"):
                tqdm.write(f"{record['status']}: {record['unit']} "
                           f"{record['framework']} seed {record['seed']}: "
                           f"{record['reason']}")
        if fresh and not executor.in_process:
            bar.update(sum(s.steps for s in group))
        if all(s.id in written for s in group):
            checkpoint.remove(plan.directory, [s.id for s in group])
        if unwritten:  # train nothing more that could not be kept
            return
        if checkpoint.stop_requested():
            raise KeyboardInterrupt


def _stop_on_signals(executor) -> dict:
    """SIGINT and SIGTERM ask every running program to save its checkpoint and stop at its
    next chunk boundary (`models.checkpoint`); a second one stops at once. The returned dict
    gets the signal's number, and ``restore()`` puts the previous handlers back."""
    checkpoint.clear_stop()
    stopped: dict = {"restore": lambda: None}
    if threading.current_thread() is not threading.main_thread():
        return stopped  # only the main thread may set handlers: signals keep their defaults

    def handle(signum, frame):
        if checkpoint.stop_requested():  # asked twice: stop now
            raise KeyboardInterrupt
        stopped["signal"] = signum
        checkpoint.request_stop()
        # os.write: a handler may interrupt a print or the bar holding its lock
        os.write(2, f"\n{signal.Signals(signum).name}: saving each running program's "
                    "checkpoint at its next chunk of steps (again to stop at once)\n".encode())
        if not executor.in_process:  # the workers train; the executor asks them to stop
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    stopped["restore"] = lambda: [signal.signal(s, h) for s, h in previous.items()]
    return stopped


def _preflight(specs, max_replicas: int) -> None:
    """What each configuration needs from this machine (memory, data files), checked
    before anything is trained or written: `Task.preflight` raises TaskError naming the
    parameter and the estimate."""
    from tasks.mnist_counting import DigitSequences

    made: dict = {}  # one task object per configuration (its data files are read once)
    for group in suite.groups(specs, max_replicas):
        configs = {(s.task, s.task_params, s.batch_size): s for s in group}
        for key, spec in configs.items():
            if key not in made:
                made[key] = tasks.get(spec.task)(**spec.params)
            # its files, and its estimate for the whole program: every per-replica array
            # spans all of the program's replicas, whatever their configurations
            made[key].preflight(spec.batch_size, len(group))
    images = {t.digits.text() for t in made.values() if isinstance(t, DigitSequences)}
    for text in sorted(images):  # which digit images the MNIST tasks read, said up front
        hint = "" if text.startswith("MNIST") or tasks.digits.find_mnist() else (
            " (no MNIST on this machine: `python -m benchmarks fetch mnist` gets it)")
        print(f"digit tasks: {text}{hint}")


def _exit_status(df) -> int:
    """0 when every run ended ok or diverged (or was skipped: its framework is missing),
    1 when any ended in error or could not be scored because its reference runs had not
    all finished (``references_ok`` false): each is listed with its reason."""
    none = df.iloc[0:0]
    failed = df[df["status"] == "error"] if "status" in df else none
    unscored = df[df["references_ok"].eq(False) & df["status"].isin(FINAL)] \
        if "references_ok" in df and "status" in df else none
    for rows, what in ((failed, "ended in error"),
                       (unscored, "not scored (their reference runs had not all finished)")):
        if rows.empty:
            continue
        print(f"\n{len(rows)} run(s) {what}:", file=sys.stderr)
        for _, row in rows.iterrows():
            print(f"  {row['task']} {row['unit']} {row['framework']} seed {row['seed']}: "
                  f"{row['reason']}", file=sys.stderr)
    return int(not (failed.empty and unscored.empty))


def _print_summary(root: Path, ids: set[str], staged: suite.Stages | None = None):
    """The summary tables of these runs, and a line per stage where there are several;
    returns their rows (status and reason included)."""
    from reports import frame, stats

    df = frame.load(root)
    if df.empty:
        return df
    df = df[df["id"].isin(ids)]
    import pandas as pd

    # per task, a row per configuration: the task parameters that vary (op, language, ...)
    for task, rows in df.groupby("task", sort=False):
        rows = rows.dropna(axis=1, how="all")
        varying = [c for c in rows.columns if c.startswith("param_")
                   and rows[c].astype(str).nunique() > 1]
        table = stats.summary(rows, by=(*varying, "unit", "framework")).dropna(axis=1,
                                                                             how="all")
        if not table.empty:
            table.columns = [c.removeprefix("param_") for c in table.columns]
            with pd.option_context("display.width", 200, "display.max_rows", 500,
                                   "display.float_format", "{:.3g}".format):
                print(f"\n{task}:\n{table.to_string(index=False)}")
    if staged is not None and len(staged.runs) > 1:
        _print_stages(df, staged)
    return df


def _print_stages(df, staged: suite.Stages) -> None:
    """Per stage: its runs by status and, for runs scored against references, how many
    were."""
    print()
    for k, stage in enumerate(staged.runs):
        rows = df[df["id"].isin({s.id for s in stage})]
        counts = ", ".join(f"{n} {status}" for status, n in
                           rows["status"].value_counts(sort=False).items())
        line = f"{_stage_name(k, len(staged.runs))}: {len(stage)} runs ({counts or 'none'})"
        if "references_ok" in rows and any(s.id in staged.references for s in stage):
            scored = rows[rows["status"].isin(FINAL)]["references_ok"]
            line += (f"; {int(scored.eq(True).sum())} scored against their references, "
                     f"{int(scored.eq(False).sum())} not")
        print(line)


def cmd_report(args) -> int:
    from reports import frame, html

    store_dir = Path(args.results)
    check_input(store_dir)
    targets = check_output(args.output, [store_dir], "ArithBench report", beside=frame.TABLES)
    df, curves = frame.read(store_dir)
    for line in df.attrs.get("corrupt", []):
        print(f"left out: {line}", file=sys.stderr)
    if df.empty and not df.attrs.get("corrupt"):
        raise UsageError(f"results directory {str(store_dir)!r} holds no records; nothing "
                         f"to report")
    out = html.render(df, targets[0], curves=curves)
    print(f"report written to {out}, its tables beside it: "
          f"{', '.join(str(t) for t in targets[1:])}")
    code = _exit_status(df)
    return 1 if df.attrs.get("corrupt") else code


def check_input(path: Path) -> None:
    """A results directory, or a saved results.parquet; else UsageError saying which it is
    not."""
    if path.is_dir() or (path.suffix == ".parquet" and path.is_file()):
        return
    if not path.exists():
        raise UsageError(f"results directory {str(path)!r} does not exist (a saved table: "
                         f"an existing results.parquet)")
    raise UsageError(f"{str(path)!r} is not a results table: give a results directory or a "
                     f"results.parquet (a CSV loses the types the report needs)")


def cmd_compare(args) -> int:
    from benchmarks import compare

    return compare.command(args.results, args.models, args.output, args.alpha,
                           against=args.against_baseline, units=args.units)


def cmd_fetch(args) -> int:
    from benchmarks import fetch

    if args.dir is not None and Path(args.dir).expanduser().exists() \
            and not Path(args.dir).expanduser().is_dir():
        raise UsageError(f"--dir {args.dir!r} is a file; name a directory to put MNIST in")
    for url in args.mirror or ():
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
            raise UsageError(f"bad --mirror {url!r}; expected an http(s) URL of a directory, "
                             f"e.g. https://ossci-datasets.s3.amazonaws.com/mnist/")
    if not 0 < args.timeout <= 86_400:
        raise UsageError(f"bad --timeout {args.timeout:g}; expected seconds, more than 0 and "
                         f"at most 86400")
    return fetch.main(args.dataset, args.dir, args.mirror, args.timeout)


def cmd_throughput(args) -> int:
    from benchmarks import throughput

    for model in suite.split_names(args.units, reference.UNITS, "unit"):
        registry.parse_model(model)
    registry.check_framework(args.framework)
    if not (1 <= args.seeds <= suite.MAX_SEEDS and 1 <= args.steps <= MAX_STEPS):
        raise UsageError(f"--seeds and --steps must be positive, at most {suite.MAX_SEEDS:,} "
                         f"and {MAX_STEPS:,} (got {args.seeds}, {args.steps})")
    missing = registry.framework_missing(args.framework)
    if missing:
        raise UsageError(f"framework {args.framework!r} cannot run: {missing}")
    args.device = _device(args.device)
    _check_device(args.device, [args.framework])
    if args.program:
        return _throughput_program(args, throughput)
    tasks.get("static_arithmetic")().preflight(throughput.PROTOCOL.batch_size, args.seeds)
    total = 0.0
    for model in suite.split_names(args.units, reference.UNITS, "unit"):
        try:
            result = throughput.measure(model, args.framework, args.seeds, args.steps,
                                        args.common_data, args.device)
        except RuntimeError as err:  # the run ended in error: say why, exit 1
            print(f"python -m benchmarks throughput: {err}", file=sys.stderr)
            return 1
        print(f"{model} {args.framework} seeds={args.seeds} steps={args.steps} "
              f"{'common' if args.common_data else 'own'}-data: "
              f"{result['seed_steps_per_s']:.1f} seed-steps/s, "
              f"{result['samples_per_s']:.0f} samples/s, {result['train_seconds']:.2f} s")
        total += result["seed_steps_per_s"]
    print(f"seed_steps_per_s={total / len(args.units.split(',')):.1f}")
    return 0


def _throughput_program(args, throughput) -> int:
    """throughput --program: one program per model across --ops and [Primer]'s nine range
    pairs; the last line is configuration_seed_steps_per_s=<float> (the mean over --units)."""
    ops = tuple(suite.split_names(args.ops, ("add", "sub", "mul", "div", "squared", "root"),
                                  "op"))
    if args.common_data:
        raise UsageError("--program trains each seed's own data; drop --common-data")
    from tasks.static_arithmetic import PRIMER_RANGES

    replicas = args.seeds * len(ops) * len(PRIMER_RANGES)  # the program, not one configuration
    tasks.get("static_arithmetic")(input_size=2).preflight(throughput.PROTOCOL.batch_size,
                                                           replicas)
    total = 0.0
    for model in suite.split_names(args.units, reference.UNITS, "unit"):
        try:
            result = throughput.measure_program(model, args.framework, args.seeds, args.steps,
                                                ops, args.device)
        except RuntimeError as err:
            print(f"python -m benchmarks throughput: {err}", file=sys.stderr)
            return 1
        print(f"{model} {args.framework} seeds={args.seeds} steps={args.steps} "
              f"ops={','.join(ops)} range pairs={result['range_pairs']} "
              f"replicas={result['replicas']}: "
              f"{result['configuration_seed_steps_per_s']:.1f} configuration-seed-steps/s, "
              f"{result['train_seconds']:.2f} s")
        total += result["configuration_seed_steps_per_s"]
    print(f"configuration_seed_steps_per_s={total / len(args.units.split(',')):.1f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", allow_abbrev=False,
        description="ArithBench: train arithmetic units on arithmetic tasks in PyTorch and "
                    "TensorFlow; measure interpolation, extrapolation and success over seeds.",
        epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", allow_abbrev=False,
                         help="list tasks, units, frameworks (installed or not), budgets")

    run = sub.add_parser("run", allow_abbrev=False,
                         help="train a matrix of runs; resumes where it stopped",
                         epilog=EXIT_STATUS,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Train tasks x units x frameworks x seeds. Seeds of one "
                         "configuration train together as one vectorised program. Finished "
                         "runs are skipped on a rerun (use --force to rerun them). Runs that "
                         "others are scored against (sequential_mnist's reference runs, "
                         "with thresholds=references) train first, in a stage of their own; "
                         "the rest start once that stage has finished.")
    run.add_argument("--tasks", help="comma-separated task names (default: all)")
    run.add_argument("--units", help="comma-separated models, e.g. nau,nau-nmu: for the "
                     "static task UNIT (UNIT->UNIT) or UNIT-UNIT (default: each task's own; "
                     + "; ".join(f"{name}: {','.join(cls.default_models)}"
                                 for name, cls in tasks.TASKS.items()) + ")")
    run.add_argument("--frameworks", default="torch,tf", help="torch,tf (default: both)")
    run.add_argument("--ops", help="static arithmetic ops: add,sub,mul,div,squared,root "
                     "(default: add,sub,mul)")
    run.add_argument("--seeds", help="e.g. 0-9 or 0,3,5 (default: the budget's number)")
    run.add_argument("--budget", default="quick", help=f"one of {', '.join(suite.BUDGETS)} "
                     "(default: quick)")
    run.add_argument("--steps", type=int, help="override the budget's number of steps")
    run.add_argument("--param", action="append", metavar="NAME=VALUE",
                     help="task parameter, repeatable: e.g. input_size=2, "
                     "interpolation_range=1,2, extrapolation_range=-6,-2+2,6 (a union)")
    run.add_argument("--results", help="results directory (default: results/<budget>)")
    run.add_argument("--force", action="store_true", help="rerun runs already finished")
    run.add_argument("--common-data", action="store_true",
                     help="all seeds of a group see the same batches (faster; marked in "
                     "every record; never the default)")
    run.add_argument("--executor", default="local",
                     help=f"one of {', '.join(executors.EXECUTORS)} (default: local, in this "
                     "process; processes: a local pool; dask: dask.distributed)")
    run.add_argument("--workers", type=int, default=2,
                     help="worker processes for --executor processes, or for the local Dask "
                     "cluster started when no --scheduler is given (default: 2)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="with --executor dask: join this running Dask scheduler instead of "
                     "starting a LocalCluster on 127.0.0.1")
    run.add_argument("--max-replicas", type=int, default=1024,
                     help="most runs (replicas) trained together in one program (default: "
                     "1024)")
    run.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU exists")
    run.add_argument("--mnist-dir", metavar="DIR", help="MNIST for the digit tasks: the four "
                     "IDX files (plain or .gz) or mnist.npz (sets $ARITHBENCH_MNIST; default: "
                     "that variable, the usual caches, else scikit-learn's 8x8 digits)")
    run.add_argument("--checkpoint-every", type=float, default=checkpoint.DEFAULT_EVERY / 60,
                     metavar="MINUTES", help="save each running program's whole state (weights, "
                     "Adam, data streams, evaluations) every MINUTES to RESULTS/"
                     f"{checkpoint.DIRECTORY}, and on SIGINT or SIGTERM; a rerun resumes it "
                     "bit for bit (default: %(default)g; 0: off)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    tp = sub.add_parser("throughput", allow_abbrev=False,
                         help="measure training throughput on the static protocol",
                        description="Train SEEDS seeds of one model together on the static "
                        "task (100 inputs, batch 128, evaluation every 1000 steps) and print "
                        "seed-steps per second; the last line is seed_steps_per_s=<float> "
                        "(the mean over --units).")
    tp.add_argument("--units", default="nalu", help="comma-separated models (default: nalu)")
    tp.add_argument("--framework", default="torch", help="torch or tf (default: torch)")
    tp.add_argument("--seeds", type=int, default=64, help="seeds trained together (default: 64)")
    tp.add_argument("--steps", type=int, default=3000, help="training steps (default: 3000)")
    tp.add_argument("--common-data", action="store_true", help="one batch for all seeds")
    tp.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU exists")
    tp.add_argument("--program", action="store_true",
                    help="one program across --ops and [Primer]'s nine range pairs (input "
                    "size 2, own data): prints configuration-seed-steps/s")
    tp.add_argument("--ops", default="add,mul", help="with --program: ops (default: add,mul)")

    report = sub.add_parser("report", allow_abbrev=False,
                         help="write the HTML report of a results directory")
    report.add_argument("results", help="results directory, or a results.parquet that report "
                        "wrote (a published baseline)")
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write")

    fetch = sub.add_parser(
        "fetch", allow_abbrev=False,
        help="download MNIST once (checked against pinned MD5s) into your cache",
        description="Download the four MNIST IDX files (mirrors tried in turn; each file "
        "checked against its pinned MD5 and renamed into place only then) into the cache "
        "the digit tasks search. Exit status: 0 in place, 1 download failed (one line: why, "
        "and how to place the files by hand), 2 bad input, 130 or 143 interrupted (nothing "
        "partial is kept).")
    fetch.add_argument("dataset", choices=("mnist",), help="what to fetch: mnist")
    fetch.add_argument("--dir", help="where to put the files (default: "
                       "~/.cache/arithbench/mnist, or $XDG_CACHE_HOME/arithbench/mnist)")
    fetch.add_argument("--mirror", action="append", metavar="URL",
                       help="a mirror to use instead of the public ones, repeatable")
    fetch.add_argument("--timeout", type=float, default=300, metavar="SECONDS",
                       help="most seconds one file may take from one mirror before the next "
                       "is tried (default: 300)")

    cmp = sub.add_parser(
        "compare", allow_abbrev=False,
        help="did anything get significantly worse? two results directories, two models in "
        "one, or a new unit against a published baseline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Per configuration: success rates of A and B with Fisher's exact test "
        "(Holm-corrected over the configurations compared), median extrapolation errors with "
        "a Mann-Whitney test, and B's throughput over A's. With --against-baseline: each unit "
        "of NEW against every unit of BASELINE, cell by cell (same task parameters, framework "
        "and budget; the models differ).",
        epilog="exit status:\n  0  no configuration significantly worse in B (always 0 with "
        "--against-baseline)\n  1  some configuration's success rate dropped significantly "
        "(named on the last line)\n  2  bad input, or nothing in common to compare (with "
        "--against-baseline: the parameters that differ are named)")
    cmp.add_argument("results", nargs="+", metavar="DIR",
                     help="A B: two results directories (B is tested against A); one with "
                     "--models; BASELINE NEW with --against-baseline")
    cmp.add_argument("--models", metavar="A,B", help="compare model B against model A on each "
                     "configuration of one directory that both ran, e.g. nau,nac")
    cmp.add_argument("--against-baseline", action="store_true",
                     help="BASELINE NEW: each unit of the new run against every unit of the "
                     "baseline (e.g. reports/baselines/primer.parquet) on each cell both ran: "
                     "success with 95%% Wilson intervals, Fisher's exact test Holm-corrected "
                     "per pair of units, and a summary per baseline unit")
    cmp.add_argument("--units", metavar="U[,U]", help="with --against-baseline: the units of "
                     "NEW to compare (default: every unit NEW holds)")
    cmp.add_argument("-o", "--output", metavar="FILE", help="also write the table as HTML")
    cmp.add_argument("--alpha", type=float, default=0.05,
                     help="significance level after Holm's correction (default: 0.05)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"list": cmd_list, "run": cmd_run, "report": cmd_report,
                    "fetch": cmd_fetch,
                    "throughput": cmd_throughput, "compare": cmd_compare}
        return commands[args.command](args)
    except WriteError as err:  # a full disk or a read-only place: the work was not kept
        print(f"python -m benchmarks {args.command}: error: {err}", file=sys.stderr)
        return 1
    except (UsageError, suite.SuiteError, TaskError, registry.UnknownName, StoreError,
            ValueError) as err:
        print(f"python -m benchmarks {args.command}: error: {plain(str(err))}",
              file=sys.stderr)
        return 2


LONG = 80  # characters of one value shown in a refusal
LONG_PATH = 300  # of a path (with a "/"): it names the file and is kept whole where it can be


def plain(message: str) -> str:
    """A refusal as one readable line: numpy scalars as their values (``np.float64(1.0)``
    -> ``1.0``), and any value longer than `LONG` characters (a path: `LONG_PATH`) cut, with
    its length."""
    def cut(match) -> str:
        value = match.group()
        limit = LONG_PATH if "/" in value else LONG
        if len(value) <= limit:
            return value
        return f"{value[:limit - 1]}… ({len(value):,} characters)"

    message = re.sub(r"\bnp\.[a-z_]+\d*\(([^()]*)\)", r"\1", message)
    return re.sub(rf"\S{{{LONG + 1},}}", cut, " ".join(message.split()))
