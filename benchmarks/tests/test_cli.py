"""The command line: bad input, resume, --force, Ctrl-C, missing frameworks."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cli, runner
from models import registry

ROOT = Path(__file__).resolve().parents[2]
# an installed framework, so the tox envs with one framework run these tests too
FRAMEWORK = next((f for f in registry.FRAMEWORKS if not registry.framework_missing(f)), None)
pytestmark = pytest.mark.skipif(FRAMEWORK is None, reason="neither torch nor tensorflow")
OTHER = next(f for f in registry.FRAMEWORKS if f != FRAMEWORK)
TINY = ["--tasks", "static_arithmetic", "--units", "nau,linear", "--frameworks", str(FRAMEWORK),
        "--ops", "add", "--seeds", "0-1", "--budget", "smoke", "--steps", "60", "--quiet",
        "--param", "input_size=10", "--param", "eval_size=200"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,bad", [
    (["--tasks", "nope"], "'nope'"),
    (["--units", "nalu2"], "'nalu2'"),
    (["--frameworks", "jax"], "'jax'"),
    (["--ops", "pow"], "'pow'"),
    (["--seeds", "9-3"], "'9-3'"),
    (["--seeds", "a-b"], "'a-b'"),
    (["--budget", "huge"], "'huge'"),
    (["--param", "interpolation_range=3,1"], "[3, 1]"),
    (["--ops", "root", "--param", "interpolation_range=-2,2"], "reaches -2"),
    (["--param", "colour=red"], "colour"),
    (["--param", "interpolation_range=1e30,1e38"], "interpolation_range [1e+30,1e+38]"),
    (["--device", "tpu9"], "'tpu9'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, bad):
    results = tmp_path / "r"
    proc = run_cli("run", "--results", str(results), *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and bad in lines[0]
    assert "Traceback" not in proc.stderr
    assert not list(results.glob("*.json")) if results.exists() else True


def test_unwritable_results_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_cli("run", *TINY, "--results", str(blocker / "sub"))
    assert proc.returncode == 2 and "not writable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_and_list_import_no_framework():
    code = ("import sys, runpy; sys.argv=['benchmarks', 'list']; "
            "from benchmarks import cli; cli.main(['list']); "
            "print('LOADED', [m for m in ('torch', 'tensorflow') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr
    assert "static_arithmetic" in proc.stdout and "nmu" in proc.stdout
    assert run_cli("run", "--help").returncode == 0


def test_run_resume_force(tmp_path, capsys):
    results = tmp_path / "r"
    assert cli.main(["run", *TINY, "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "4 runs, 0 already done, 4 to train" in out
    files = sorted(results.glob("*.json"))
    assert len(files) == 4
    records = [json.loads(f.read_text()) for f in files]
    assert {r["status"] for r in records} <= {"ok", "diverged"}
    assert {(r["unit"], r["seed"]) for r in records} == {(u, s) for u in ("nau", "linear")
                                                         for s in (0, 1)}
    assert "success" in out  # the summary table
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert cli.main(["run", *TINY, "--results", str(results)]) == 0
    assert "4 already done, 0 to train" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert cli.main(["run", *TINY, "--results", str(results), "--force"]) == 0
    assert "0 already done, 4 to train" in capsys.readouterr().out
    assert not list(results.glob(".*tmp"))


def test_ctrl_c_keeps_finished_groups_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    results = tmp_path / "r"
    real = runner.run_group
    calls = []

    def interrupted_second_group(group, progress=None, **options):
        calls.append(group)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(group, progress, **options)

    monkeypatch.setattr(runner, "run_group", interrupted_second_group)
    assert cli.main(["run", *TINY, "--results", str(results)]) == 130
    assert "interrupted" in capsys.readouterr().err
    kept = list(results.glob("*.json"))
    assert len(kept) == 2  # the first group's two seeds
    assert all(json.loads(f.read_text())["status"] == "ok" for f in kept)
    assert not [p for p in results.iterdir() if p.suffix == ".tmp"]
    monkeypatch.setattr(runner, "run_group", real)
    assert cli.main(["run", *TINY, "--results", str(results)]) == 0
    assert "2 already done, 2 to train" in capsys.readouterr().out


def test_missing_framework_is_skipped_with_reason_and_retried(tmp_path, monkeypatch, capsys):
    results = tmp_path / "r"
    monkeypatch.setattr(registry, "framework_missing",
                        lambda fw: f"{fw} is not installed" if fw == OTHER else None)
    args = [a if a != FRAMEWORK else f"{FRAMEWORK},{OTHER}" for a in TINY]
    assert cli.main(["run", *args, "--results", str(results)]) == 0
    records = [json.loads(f.read_text()) for f in results.glob("*.json")]
    skipped = [r for r in records if r["status"] == "skipped"]
    assert len(skipped) == 4 and all("not installed" in r["reason"] for r in skipped)
    assert all(r["framework"] == OTHER for r in skipped)
    capsys.readouterr()
    assert cli.main(["run", *args, "--results", str(results)]) == 0
    assert "4 already done, 4 to train" in capsys.readouterr().out  # skipped ones retried


def test_report_writes_html(tmp_path):
    results = tmp_path / "r"
    assert cli.main(["run", *TINY, "--results", str(results)]) == 0
    out = tmp_path / "report.html"
    assert cli.main(["report", str(results), "-o", str(out)]) == 0
    text = out.read_text()
    assert "static_arithmetic" in text and "nau" in text
    assert run_cli("report", str(tmp_path / "missing"), "-o", str(out)).returncode == 2


@pytest.mark.parametrize("fw,other", [("torch", "tensorflow"), ("tf", "torch")])
def test_a_run_imports_only_its_framework(tmp_path, fw, other):
    if registry.framework_missing(fw):
        pytest.skip(registry.framework_missing(fw))
    args = [a if a != FRAMEWORK else fw for a in TINY]
    argv = ["run", *args, "--results", str(tmp_path)]
    code = (f"import sys; from benchmarks import cli; rc = cli.main({argv!r}); "
            f"print('RC', rc, 'LOADED', {other!r} in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert "RC 0 LOADED False" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
