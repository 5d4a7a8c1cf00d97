"""bin/mutation on a tiny throwaway package: its mutants are the same each time, a mutant the
tests notice is killed (in the warm worker and in a fresh import alike), one they miss
survives, and the gate fails on a survivor docs/mutation.md does not list."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parent.parent / "bin" / "mutation.py"
MODULE = "pkg/limits.py"
SOURCE = '''
def size(count):
    if count > 10:
        return "big"
    return "small"
'''
TESTS = '''
from pkg.limits import size


def test_size():
    assert size(11) == "big"
    assert size(3) == "small"
'''
SURVIVOR = "pkg/limits.py :: size :: count > 10 → count >= 10"  # size(10) is never asked
DRIVER = '''
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import mutation

root = Path(sys.argv[2])
mutation.ROOT, mutation.LISTED, mutation.CACHE = root, root / "docs" / "mutation.md", root / ".mutation-cache"
mutation.TARGETS, mutation.GATE = {"pkg/limits.py": ["tests/test_limits.py"]}, ["pkg/limits.py"]
sys.exit(mutation.main(sys.argv[3:]))
'''


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_tool_under_test", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "limits.py").write_text(SOURCE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_limits.py").write_text(TESTS)
    (tmp_path / "docs").mkdir()
    (tmp_path / "driver.py").write_text(DRIVER)
    return tmp_path


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([sys.executable, str(project / "driver.py"), str(TOOL.parent), str(project), *args],
                          capture_output=True, text=True, env=env, timeout=300, cwd=project)


def test_the_mutants_of_a_source_are_the_same_each_time() -> None:
    tool = _tool()
    first = tool.mutations(MODULE, SOURCE)
    again = tool.mutations(MODULE, SOURCE)
    assert first == again
    assert [tool.mutant_source(SOURCE, m.index) for m in first] == [tool.mutant_source(SOURCE, m.index) for m in again]
    assert SURVIVOR in [m.key for m in first]


@pytest.mark.parametrize("method", ["warm", "cold"])
def test_a_missed_mutant_survives_and_a_noticed_one_is_killed(project: Path, method: str) -> None:
    done = _run(project, MODULE, "-v", *(["--cold"] if method == "cold" else []))
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = {line.split(": ", 1)[1]: line.split("] ", 1)[1].split(" ", 1)[0]
                for line in done.stdout.splitlines() if line.startswith("  [")}
    assert outcomes[SURVIVOR] == "survived"
    assert outcomes["pkg/limits.py :: size :: 10 → 11"] == "killed"
    assert outcomes["pkg/limits.py :: size :: return 'small' → return None"] == "killed"
    assert f"- `{SURVIVOR}` (survived)" in done.stdout
    if method == "warm":
        assert "4 of 4 mutants swapped into the warm process" in done.stdout


def test_the_gate_fails_on_an_unlisted_survivor_and_passes_once_it_is_listed(project: Path) -> None:
    unlisted = _run(project, "--gate")
    assert unlisted.returncode == 1, unlisted.stdout + unlisted.stderr
    assert SURVIVOR in unlisted.stdout
    (project / "docs" / "mutation.md").write_text(f"- `{SURVIVOR}` — size(10) is not part of the contract\n")
    listed = _run(project, "--gate")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "survivors not explained" not in listed.stdout


HANGING = '''
def drain(count):
    while count > 0:
        count -= 1
    return count
'''
HANGING_TESTS = '''
from pkg.limits import drain


def test_drain():
    assert drain(3) == 0
'''
HANGS = "pkg/limits.py :: drain :: count -= 1 → (deleted)"  # the loop never ends


def test_a_mutant_that_hangs_is_rechecked_and_reported_as_a_timeout(project: Path) -> None:
    (project / "pkg" / "limits.py").write_text(HANGING)
    (project / "tests" / "test_limits.py").write_text(HANGING_TESTS)
    done = _run(project, "--gate", "-v", "-j", "2")  # two baseline shards for one test: one runs nothing
    assert done.returncode == 0, done.stdout + done.stderr  # a timeout is detected, not a survivor
    first = [line for line in done.stdout.splitlines() if line.startswith("  [") and "run again" not in line]
    assert {line.split(": ", 1)[1]: line.split("] ", 1)[1].split(" ", 1)[0] for line in first}[HANGS] == "timeout"
    assert any(line.startswith("  [") and "run again with 3x the limits: timeout" in line and line.endswith(HANGS)
               for line in done.stdout.splitlines()), done.stdout
    assert "hung: tests/test_limits.py::test_drain" in done.stdout
    assert f"- `{HANGS}`" in done.stdout.split("killed by timeout", 1)[1]
    others = [line for line in first if not line.endswith(HANGS)]
    assert others and all("] killed (" in line for line in others), done.stdout


ONCE_FAILING = '''
from pathlib import Path


def test_fails_on_its_first_run_only():
    marker = Path(__file__).with_name("ran-once")
    if not marker.exists():
        marker.write_text("")
        raise AssertionError("a busy machine, say")
'''


def test_a_baseline_test_that_fails_once_is_run_again_alone_and_one_that_always_fails_stops_the_tool(
        project: Path) -> None:
    tests = project / "tests" / "test_limits.py"
    tests.write_text(TESTS + ONCE_FAILING)
    flaky = _run(project, "--gate", "-j", "2")
    assert "run again alone: tests/test_limits.py::test_fails_on_its_first_run_only" in flaky.stdout, flaky.stdout
    assert flaky.returncode == 1 and SURVIVOR in flaky.stdout  # the gate ran: the mutants were judged
    tests.write_text(TESTS + ONCE_FAILING.replace("if not marker.exists():", "if True:"))
    failing = _run(project, "--gate", "-j", "2")
    assert failing.returncode == 1
    assert "do not pass without mutations" in failing.stdout + failing.stderr
    assert "Traceback" not in failing.stdout + failing.stderr
    assert SURVIVOR not in failing.stdout  # no mutant was judged on a failing baseline


DEFAULTED = '''
LIMIT = 10


def size(count, limit=LIMIT):
    if count > limit:
        return "big"
    return "small"
'''


def test_a_constant_read_only_at_import_runs_the_tests_of_its_module(project: Path) -> None:
    """A default argument reads LIMIT while the module is imported, before any test: no test's
    trace shows the read (issue 14: the mutant was 'uncovered'); a module-level mutant runs
    every test of its module."""
    (project / "pkg" / "limits.py").write_text(DEFAULTED)
    done = _run(project, MODULE, "-v")
    outcomes = {line.split(": ", 1)[1]: line.split("] ", 1)[1].split(" ", 1)[0]
                for line in done.stdout.splitlines() if line.startswith("  [")}
    assert outcomes["pkg/limits.py :: <module> :: 10 → 11"] == "killed", done.stdout + done.stderr


EDITING = '''


def test_edits_the_module_under_test():
    from pathlib import Path
    source = Path(__file__).resolve().parent.parent / "pkg" / "limits.py"
    source.write_text(source.read_text() + "# edited while bin/mutation runs\\n")
'''


def test_a_module_edited_during_the_run_stops_it_before_any_mutant_runs(project: Path) -> None:
    (project / "tests" / "test_limits.py").write_text(TESTS + EDITING)  # the baseline's run edits it
    done = _run(project, MODULE, "-v")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pkg/limits.py changed on disk since the run read it" in done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not [line for line in done.stdout.splitlines() if line.startswith("  [")], done.stdout  # none judged


TEARDOWN_HANGS = '''
import threading

import pytest

from pkg.limits import size


@pytest.fixture
def server():
    yield
    if size(11) != "big":  # the code is wrong: what the teardown waits for never comes
        threading.Event().wait()


def test_size(server):
    assert size(11) == "big"
'''


def test_a_test_that_fails_then_hangs_in_its_teardown_kills_the_mutant(project: Path) -> None:
    (project / "tests" / "test_limits.py").write_text(TEARDOWN_HANGS)
    done = _run(project, MODULE, "-v")
    outcomes = {line.split(": ", 1)[1]: line.split("] ", 1)[1].split(" ", 1)[0]
                for line in done.stdout.splitlines() if line.startswith("  [")}
    assert outcomes["pkg/limits.py :: size :: return 'big' → return None"] == "killed", done.stdout + done.stderr
    assert outcomes["pkg/limits.py :: size :: 10 → 11"] == "killed", done.stdout
    assert "killed by timeout" not in done.stdout and "run again" not in done.stdout
