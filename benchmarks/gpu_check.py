"""``python -m benchmarks.gpu_check``: the GPU check of issue 17, one command (docs/gpu.md).

On a machine with a GPU, in under five minutes: which GPU each framework sees; the
throughput cases on the device in both frameworks (the static protocol's 64 seeds of nalu
and nau-nmu with each seed's own data and with common data, and the one program across
ops and [Primer]'s nine range pairs); and a short [Primer] slice trained once on the device
and once on the CPU, whose success rates `python -m benchmarks compare` tests in both
directions. Every step is the project's own command line in a subprocess, with its own
timeout, inside one time limit for the whole check. Writes ``summary.md``,
``summary.json``, ``logs/`` and the two results directories to ``--output`` (default: a
new temporary directory, printed).

``--device cpu`` is a dry run of the same steps on the CPU (nothing is measured on a GPU);
``--tiny`` shrinks every step to seconds, for the test (benchmarks/tests/test_gpu_check.py).

Exit status: 0 every step ran and the success rates agree; 1 a step failed or ran out of
time, or a configuration's success rate differs significantly between device and CPU;
2 a selected framework sees no GPU (or is not installed), or bad arguments: one message,
before anything is run or written.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = {"torch": "torch", "tf": "tensorflow"}  # as models.registry names them


@dataclass(frozen=True)
class Sizes:
    """What each step trains: the throughput protocol (docs/performance.md) and the slice."""

    seeds: int  # throughput: seeds of one configuration
    steps: int
    program_seeds: int  # throughput --program: seeds per (op, range pair)
    program_steps: int
    program_ops: str
    slice_units: str  # the [Primer] slice: `run --budget primer` restricted to these
    slice_ops: str
    slice_seeds: str
    slice_steps: int
    slice_params: tuple[str, ...] = ()


# 2 frameworks x (3 throughput cases + the slice on the device and on the CPU), sized to
# finish inside the 285 s time limit on an H200-class machine (not yet run on one:
# docs/gpu.md). The slice: 2 units x 2 ops x [Primer]'s 9 range pairs x 8 seeds, one
# program per unit; at 10,000 steps NAU on add is solved by step 5,000 (at 5,000 steps, at
# the last evaluation: a knife edge for rounding), and torch and tf end every one of the
# 288 seeds alike on the CPU (docs/gpu.md).
FULL = Sizes(seeds=64, steps=3000, program_seeds=64, program_steps=3000, program_ops="add,mul",
             slice_units="nau,nmu", slice_ops="add,mul", slice_seeds="0-7", slice_steps=10_000)
TINY = Sizes(seeds=2, steps=100, program_seeds=1, program_steps=100, program_ops="add",
             slice_units="nau", slice_ops="add", slice_seeds="0-1", slice_steps=200,
             slice_params=("interpolation_range=1,2",))

# Each framework's answer to "which GPUs do you see", printed as one JSON line.
PROBES = {
    "torch": """
import json, torch
ok = torch.cuda.is_available()
print(json.dumps({"version": torch.__version__, "cuda_build": torch.version.cuda,
                  "devices": [torch.cuda.get_device_name(i)
                              for i in range(torch.cuda.device_count())] if ok else []}))
""",
    "tf": """
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(json.dumps({"version": tf.__version__, "cuda_build": tf.test.is_built_with_cuda(),
                  "devices": [tf.config.experimental.get_device_details(g).get("device_name",
                                                                               g.name)
                              for g in gpus]}))
""",
}
PROBE_TIMEOUT = 120.0  # importing TensorFlow and starting CUDA on a cold machine
MIN_START = 10.0  # a step is not started with less time than this left


class Refused(Exception):
    """Bad input or environment: one message, exit status 2, nothing written."""


@dataclass
class Step:
    """One command of the check and what became of it."""

    name: str
    argv: list[str]
    timeout: float
    status: str = "not run"  # ok, failed, timed out, not run
    code: int | None = None
    seconds: float = 0.0
    log: str = ""

    @property
    def command(self) -> str:
        return shlex.join(["python", *self.argv])


@dataclass
class Check:
    """The run of the whole check: a clock, the output directory, the steps so far."""

    out: Path
    time_limit: float
    started: float = field(default_factory=time.monotonic)
    steps: list[Step] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        with self.lock:
            print(f"[{self.elapsed():6.1f} s] {text}", flush=True)

    def execute(self, step: Step, env: dict[str, str]) -> Step:
        """Run one step with its log in logs/NAME.log; killed at its timeout or at the
        check's time limit, whichever comes first."""
        with self.lock:
            self.steps.append(step)
        left = self.time_limit - self.elapsed()
        if left < MIN_START:
            step.status = f"not run: the check's {self.time_limit:g} s time limit was reached"
            self.say(f"{step.name}: {step.status}")
            return step
        timeout = min(step.timeout, left)
        log = self.out / "logs" / f"{step.name}.log"
        step.log = str(log.relative_to(self.out))
        self.say(f"{step.name}: {step.command}")
        start = time.monotonic()
        with open(log, "w") as fh:
            fh.write(f"$ {step.command}\n")
            fh.flush()
            proc = subprocess.Popen([sys.executable, *step.argv], cwd=REPO, env=env,
                                    stdout=fh, stderr=subprocess.STDOUT)
            try:
                step.code = proc.wait(timeout=timeout)
                step.status = "ok" if step.code == 0 else "failed"
            except subprocess.TimeoutExpired:
                proc.kill()  # the commands run in one process (local executor)
                proc.wait()
                step.status = f"timed out after {timeout:.0f} s"
            except BaseException:  # Ctrl-C: leave no training process behind
                proc.kill()
                proc.wait()
                raise
        step.seconds = time.monotonic() - start
        self.say(f"{step.name}: {step.status}"
                 f"{f' (exit {step.code})' if step.code not in (0, None) else ''}, "
                 f"{step.seconds:.1f} s")
        return step

    def output(self, step: Step) -> str:
        return (self.out / step.log).read_text(errors="replace") if step.log else ""


def parse_device(device: str) -> tuple[str, int]:
    """cpu, cuda or cuda:N -> (kind, index)."""
    match = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", device)
    if not match or (match[1] == "cpu" and match[2] is not None):
        raise Refused(f"bad --device {device!r}; expected cuda, cuda:N or cpu (a dry run)")
    return match[1], int(match[2] or 0)


def probe(frameworks: list[str], env: dict[str, str]) -> dict[str, dict]:
    """Each framework's version, whether it is a CUDA build and the GPUs it sees, asked in
    a subprocess of its own (in parallel), so this process imports neither."""
    import importlib.util

    for fw in frameworks:
        if importlib.util.find_spec(FRAMEWORKS[fw]) is None:
            raise Refused(f"{FRAMEWORKS[fw]} is not installed; install it (its CUDA build for "
                          f"a GPU: docs/gpu.md) or leave it out with --frameworks")

    def ask(fw: str) -> dict:
        try:
            done = subprocess.run([sys.executable, "-c", PROBES[fw]], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Refused(f"{fw}: asking for its GPUs took over {PROBE_TIMEOUT:g} s") from None
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Refused(f"{fw}: asking for its GPUs failed (exit {done.returncode}): {last}")
        return json.loads(lines[-1])

    with ThreadPoolExecutor(len(frameworks)) as pool:
        return dict(zip(frameworks, pool.map(ask, frameworks)))


def no_gpu_message(device: str, index: int, seen: dict[str, dict]) -> str | None:
    """None when each framework sees GPU ``index``; else which do not, and why."""
    missing = []
    for fw, info in seen.items():
        if len(info["devices"]) > index:
            continue
        why = "" if info["cuda_build"] else f" (a build without CUDA: {info['version']})"
        missing.append(f"{fw} sees {len(info['devices'])} GPU(s){why}")
    if not missing:
        return None
    return (f"--device {device}: no GPU visible: {'; '.join(missing)}. Run this on a machine with "
            f"a GPU and the frameworks' CUDA builds (docs/gpu.md), leave a framework out with "
            f"--frameworks, or give --device cpu for a dry run on the CPU")


def throughput_steps(frameworks: list[str], device: str, sizes: Sizes,
                     timeout: float) -> list[Step]:
    """The throughput cases (docs/performance.md) on the device, per framework."""
    steps = []
    for fw in frameworks:
        base = ["-m", "benchmarks", "throughput", "--framework", fw, "--device", device]
        case = [*base, "--units", "nalu,nau-nmu", "--seeds", str(sizes.seeds),
                "--steps", str(sizes.steps)]
        steps += [Step(f"throughput-{fw}-own", case, timeout),
                  Step(f"throughput-{fw}-common", [*case, "--common-data"], timeout),
                  Step(f"throughput-{fw}-program",
                       [*base, "--program", "--units", "nalu", "--ops", sizes.program_ops,
                        "--seeds", str(sizes.program_seeds),
                        "--steps", str(sizes.program_steps)], timeout)]
    return steps


def slice_step(fw: str, where: str, results: Path, sizes: Sizes, timeout: float) -> Step:
    """The [Primer] slice of one framework on ``where`` (the device, or cpu)."""
    argv = ["-m", "benchmarks", "run", "--tasks", "static_arithmetic", "--budget", "primer",
            "--units", sizes.slice_units, "--ops", sizes.slice_ops,
            "--seeds", sizes.slice_seeds, "--steps", str(sizes.slice_steps),
            "--frameworks", fw, "--device", where, "--results", str(results),
            "--force", "--quiet"]
    for param in sizes.slice_params:
        argv += ["--param", param]
    return Step(f"slice-{fw}-{results.name.removeprefix('slice-')}", argv, timeout)


def slice_table(cpu: Path, device: Path) -> list[dict]:
    """Per configuration of the slice: successes on the CPU and on the device, and in how
    many seeds the two runs ended the same way (informative: the device rounds otherwise,
    so single seeds may flip; `compare` decides whether the rates differ)."""
    from benchmarks.records import readable
    from benchmarks.store import Store

    runs: dict[tuple, dict[str, dict[int, bool]]] = defaultdict(lambda: {"cpu": {},
                                                                         "device": {}})
    for side, root in (("cpu", cpu), ("device", device)):
        if not root.is_dir():
            continue
        for rec in Store(root, create=False).records():
            if rec.get("status") not in ("ok", "diverged", "error"):
                continue
            p = rec["task_params"]
            key = (rec["framework"], rec["unit"], p["op"], readable(p["interpolation_range"]),
                   readable(p["extrapolation_range"]))
            runs[key][side][rec["seed"]] = bool(rec.get("metrics", {}).get("success"))
    rows = []
    for key in sorted(runs):
        a, b = runs[key]["cpu"], runs[key]["device"]
        both = sorted(set(a) & set(b))
        rows.append(dict(zip(("framework", "unit", "op", "interpolation", "extrapolation"), key),
                         cpu=f"{sum(a.values())}/{len(a)}", device=f"{sum(b.values())}/{len(b)}",
                         same_outcome=f"{sum(a[s] == b[s] for s in both)}/{len(both)}"))
    return rows


def training_seconds(root: Path) -> dict[str, float]:
    """Training time per framework and unit (one program each) from the records."""
    from benchmarks.store import Store

    out: dict[str, float] = {}
    if root.is_dir():
        for rec in Store(root, create=False).records():
            if "train_seconds" in rec:
                key = f"{rec['framework']} {rec['unit']}"
                out[key] = max(out.get(key, 0.0), rec["train_seconds"])
    return dict(sorted(out.items()))


def revision() -> str:
    """The code's commit, and whether the tree has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, text=True, capture_output=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (head or "unknown") + (" with uncommitted changes" if dirty.strip() else "")


def nvidia_smi() -> str:
    """nvidia-smi's one line per GPU (name, driver, memory), where it exists."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], text=True, capture_output=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def figures(text: str) -> list[str]:
    """The result lines of a throughput command's output."""
    return [line for line in text.splitlines()
            if re.match(r"^\S+ (torch|tf) seeds=", line) or "seed_steps_per_s=" in line]


def summary_markdown(info: dict) -> str:
    """summary.md: the verdict, the environment, every step, the figures."""
    dry = info["device"] == "cpu"
    lines = ["# ArithBench GPU check", "",
             f"**{'PASS' if info['passed'] else 'FAIL'}**: " + "; ".join(info["verdict"]), "",
             f"- date (UTC): {info['date']}; code: {info['revision']}",
             f"- device: `{info['device']}`" + (" (a dry run on the CPU: nothing here was "
                                                "measured on a GPU)" if dry else ""),
             f"- sizes: {'--tiny' if info['tiny'] else 'full'}: {describe(info['sizes'])}",
             f"- machine: {info['machine']}; {info['wall_seconds']:.1f} s in all, time limit "
             f"{info['time_limit']:g} s"]
    if info["nvidia_smi"]:
        lines.append(f"- nvidia-smi: {info['nvidia_smi']}")
    lines += ["", "| framework | version | CUDA build | GPUs it sees |", "|---|---|---|---|"]
    for fw, seen in info["frameworks"].items():
        lines.append(f"| {fw} | {seen['version']} | {seen['cuda_build'] or 'no'} | "
                     f"{', '.join(seen['devices']) or 'none'} |")
    lines += ["", "## Steps", "", "| step | status | seconds | log |", "|---|---|---|---|"]
    for step in info["steps"]:
        lines.append(f"| {step['name']} | {step['status']} | {step['seconds']:.1f} | "
                     f"{step['log']} |")
    lines += ["", "Commands (from the repository root):", "", "```"]
    lines += [shlex.join(["python", *step["argv"]]) for step in info["steps"]]
    lines += ["```", "", f"## Throughput on `{info['device']}`", ""]
    lines += ["```", *(line for name, found in info["throughput"].items()
                       for line in [f"# {name}", *found]), "```"]
    lines += ["", f"## [Primer] slice: `{info['device']}` against `cpu`", "",
              "Success per configuration (runs that succeeded out of those that ran) and in "
              "how many seeds both runs ended the same way:", "",
              "| framework | unit | op | interpolation | extrapolation | cpu | device | "
              "same outcome |", "|---|---|---|---|---|---|---|---|"]
    for row in info["slice"]:
        lines.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    lines.append("")
    for side in ("cpu", "device"):
        times = ", ".join(f"{k} {v:.1f} s" for k, v in info["slice_seconds"][side].items())
        lines.append(f"- training time per program on {side}: {times or 'none'}")
    lines.append("")
    lines.append("`python -m benchmarks compare A B` exits 1 when B is significantly worse; "
                 "run with B the device, then with B the CPU:")
    lines.append("")
    for name, verdict in info["compare"].items():
        lines.append(f"- `{name}`: {verdict}")
    if info["compare_table"]:
        lines += ["", "```", info["compare_table"], "```"]
    return "\n".join(lines) + "\n"


def describe(sizes: dict) -> str:
    """The sizes in words."""
    s = sizes
    params = "".join(f", --param {p}" for p in s["slice_params"])
    return (f"throughput {s['seeds']} seeds x {s['steps']} steps; --program "
            f"{s['program_seeds']} seeds x {s['program_steps']} steps, ops {s['program_ops']}; "
            f"slice units {s['slice_units']}, ops {s['slice_ops']}, seeds {s['slice_seeds']}, "
            f"{s['slice_steps']} steps{params}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check",
        description="The GPU check (docs/gpu.md): the throughput cases on the device in each "
        "framework, and a short [Primer] slice on the device and on the CPU whose success "
        "rates must agree (python -m benchmarks compare, both directions). Under five minutes "
        "on an H200-class machine by design.",
        epilog="exit status: 0 everything ran and the rates agree; 1 a step failed or ran out "
        "of time, or the rates differ; 2 no GPU for a selected framework (or not installed), "
        "or bad arguments",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda",
                        help="cuda, cuda:N, or cpu for a dry run on the CPU (default: cuda)")
    parser.add_argument("--frameworks", default="torch,tf", help="torch,tf (default: both)")
    parser.add_argument("--output", help="a new (or empty) directory for summary.md, "
                        "summary.json, logs/ and the results (default: a new temporary "
                        "directory, printed)")
    parser.add_argument("--tiny", action="store_true",
                        help="every step a few seconds (the test's size; no figure to read)")
    parser.add_argument("--time-limit", type=float, default=285.0,
                        help="seconds for the whole check; a step is stopped when it is "
                        "reached, and the check fails (default: 285)")
    parser.add_argument("--step-timeout", type=float, default=120.0,
                        help="seconds for each step (default: 120)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="slice runs at once: the device's and the CPU's of a framework "
                        "(default: 2; 1 runs them one after the other)")
    args = parser.parse_args(argv)
    env = {**os.environ}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        kind, index = parse_device(args.device)
        frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
        unknown = [f for f in frameworks if f not in FRAMEWORKS]
        if not frameworks or unknown or len(set(frameworks)) != len(frameworks):
            raise Refused(f"bad --frameworks {args.frameworks!r}; expected torch, tf or "
                          f"torch,tf")
        if not (args.time_limit > 0 and args.step_timeout > 0 and args.jobs >= 1):
            raise Refused("--time-limit and --step-timeout must be positive, --jobs at least 1")
        seen = probe(frameworks, env)
        for fw, info in seen.items():
            print(f"{fw} {info['version']}: CUDA build {info['cuda_build'] or 'no'}; GPUs: "
                  f"{', '.join(info['devices']) or 'none'}")
        if kind == "cuda":
            message = no_gpu_message(args.device, index, seen)
            if message:
                raise Refused(message)
        out = Path(args.output or tempfile.mkdtemp(prefix="arithbench-gpu-check-")).resolve()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise Refused(f"--output {str(out)!r} exists and is not an empty directory; name "
                          f"a new one (an earlier check's results would mix with this one's)")
        try:
            (out / "logs").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise Refused(f"cannot write to --output {str(out)!r}: "
                          f"{err.strerror or err}") from None
    except Refused as err:
        print(f"python -m benchmarks.gpu_check: error: {err}", file=sys.stderr)
        return 2
    print(f"output: {out}" + ("  (device cpu: a dry run, nothing measured on a GPU)"
                              if kind == "cpu" else ""))

    sizes = TINY if args.tiny else FULL
    check = Check(out, args.time_limit)
    throughput = {}
    for step in throughput_steps(frameworks, args.device, sizes, args.step_timeout):
        check.execute(step, env)
        throughput[step.name] = figures(check.output(step))
    cpu_dir, device_dir = out / "slice-cpu", out / "slice-device"
    jobs = [slice_step(fw, where, root, sizes, args.step_timeout)
            for fw in frameworks for where, root in ((args.device, device_dir),
                                                      ("cpu", cpu_dir))]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda s: check.execute(s, env), jobs))
    # B against A exits 1 when B is significantly worse: the device, then the CPU, as B
    compares = [Step("compare-device-vs-cpu", ["-m", "benchmarks", "compare", str(cpu_dir),
                                               str(device_dir), "-o",
                                               str(out / "compare.html")], args.step_timeout),
                Step("compare-cpu-vs-device", ["-m", "benchmarks", "compare", str(device_dir),
                                               str(cpu_dir)], args.step_timeout)]
    verdicts, table = {}, ""
    for step in compares:
        check.execute(step, env)
        text = check.output(step)
        found = [ln for ln in text.splitlines()
                 if "configuration" in ln and ("worse in B" in ln or "share no" in ln)]
        verdicts[step.name] = (found[-1].strip() if found else step.status).removeprefix(
            "python -m benchmarks compare: error: ")
        if not table and step.status in ("ok", "failed") and "\nA = " in text:
            table = text[text.index("\nA = ") + 1:].rstrip()  # the first one's table

    verdict = []
    failed = [s.name for s in check.steps if s.status != "ok"]
    slice_failed = [s for s in failed if s.startswith(("slice", "compare"))]
    if [s for s in failed if s.startswith("throughput")]:
        verdict.append("not run or failed: " + ", ".join(s for s in failed
                                                         if s.startswith("throughput")))
    if slice_failed:
        verdict.append("success rates not shown to agree: " + ", ".join(slice_failed)
                       + " did not pass (a compare exits 1 when its B is significantly worse)")
    if not failed:
        verdict.append("every step ran; the slice's success rates agree between "
                       f"{args.device} and cpu (no configuration significantly different "
                       f"either way)" + (" (a dry run: both on the CPU)" if kind == "cpu"
                                         else ""))
    info = {"passed": not failed, "verdict": verdict, "device": args.device,
            "tiny": args.tiny, "sizes": asdict(sizes),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
            "revision": revision(), "nvidia_smi": nvidia_smi() if kind == "cuda" else "",
            "machine": f"{platform.node()}, {platform.platform()}, {os.cpu_count()} CPUs",
            "frameworks": seen, "wall_seconds": check.elapsed(),
            "time_limit": args.time_limit, "steps": [asdict(s) for s in check.steps],
            "throughput": throughput, "slice": slice_table(cpu_dir, device_dir),
            "slice_seconds": {"cpu": training_seconds(cpu_dir),
                              "device": training_seconds(device_dir)},
            "compare": verdicts, "compare_table": table}
    (out / "summary.json").write_text(json.dumps(info, indent=1) + "\n")
    (out / "summary.md").write_text(summary_markdown(info))
    print(f"{'PASS' if info['passed'] else 'FAIL'}: {'; '.join(verdict)}")
    print(f"summary: {out / 'summary.md'}")
    return 0 if info["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
