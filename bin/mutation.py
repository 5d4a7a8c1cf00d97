"""The mutation gate: one deliberate bug at a time in a module, the tests that run that code
after each, and the bugs no test noticed (survivors).

A small AST mutator instead of mutmut: it needs no copy of the tree, runs each mutant in a
forked pytest worker (imports are paid once), and picks for each mutant only the tests that
ran the mutated lines in a baseline run under coverage.py (one context per test), the test
most likely to fail first, stopping at the first failure. Survivors are named by module, function and the mutation's text — never by line
number — so docs/mutation.md stays valid while the code around them moves."""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import gc
import hashlib
import importlib
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOOK_DIR = ROOT / "bin" / "mutation_hook"
LISTED = ROOT / "docs" / "mutation.md"

# module → the tests that cover it (glob patterns): run once under coverage, then each
# mutant runs only those of them that ran its lines
TARGETS: dict[str, list[str]] = {
    "twilio_caller/safety.py": ["tests/test_safety.py", "tests/test_gate.py"],
    "twilio_caller/server/webhook.py": ["tests/test_webhook.py", "tests/test_webhook_input.py",
                                        "tests/test_slow_and_hostile_clients.py", "tests/test_call_state.py",
                                        "tests/test_replay_layers.py", "tests/test_relay.py", "tests/test_relay_calls.py",
                                        "tests/test_relay_voices.py", "tests/test_instances.py",
                                        "tests/test_relay_webhook.py", "tests/test_relay_restart.py",
                                        "tests/test_refused_requests.py"],
    "twilio_caller/transport/twilio/requests.py": ["tests/test_twilio_transport.py", "tests/test_amd.py",
                                                   "tests/test_webhook.py", "tests/test_webhook_input.py",
                                                   "tests/test_slow_and_hostile_clients.py",
                                                   "tests/test_call_state.py", "tests/test_replay_layers.py"],
    "twilio_caller/transport/twilio/routes.py": ["tests/test_twilio_transport.py", "tests/test_webhook.py",
                                                 "tests/test_webhook_input.py", "tests/test_relay.py",
                                                 "tests/test_relay_calls.py", "tests/test_relay_takeback.py"],
    "twilio_caller/transport/twilio/twiml.py": ["tests/test_twilio_twiml.py", "tests/test_twilio_transport.py",
                                                "tests/test_webhook.py"],
    "twilio_caller/conversation.py": ["tests/test_conversation_*.py", "tests/test_calls.py", "tests/test_webhook.py",
                                      "tests/test_call_state.py", "tests/test_voice_features.py",
                                      "tests/test_call_lifecycle.py", "tests/test_interrupt.py",
                                      "tests/test_replay_layers.py", "tests/test_crash.py", "tests/test_calls_cli.py",
                                      "tests/test_callee_experience_core.py", "tests/test_callee_experience.py",
                                      "tests/test_amd.py", "tests/test_crash_callee.py", "tests/test_audio.py",
                                      "tests/test_instances_carried.py"],
    "twilio_caller/transport/twilio/calls.py": ["tests/test_calls.py", "tests/test_safety.py", "tests/test_gate.py",
                                                "tests/test_call_lifecycle.py", "tests/test_recovery.py",
                                                "tests/test_telephony_*.py"],
    "twilio_caller/transport/twilio/status.py": ["tests/test_twilio_transport.py", "tests/test_webhook.py"],
    "twilio_caller/transport/twilio/transport.py": ["tests/test_twilio_transport.py", "tests/test_calls.py", "tests/test_call_lifecycle.py",
                                                    "tests/test_recovery.py", "tests/test_webhook.py",
                                                    "tests/test_relay_takeback.py", "tests/test_amd.py"],
    "twilio_caller/server/refusals.py": ["tests/test_refused_requests.py"],
    "twilio_caller/transport/twilio/relay.py": ["tests/test_relay*.py", "tests/test_engine_scenarios.py",
                                                "tests/test_demo_relay.py"],
    "twilio_caller/transport/twilio/relay_socket.py": ["tests/test_relay*.py", "tests/test_engine_scenarios.py",
                                                       "tests/test_demo_relay.py"],
}
GATE = ["twilio_caller/safety.py", "twilio_caller/server/webhook.py", "twilio_caller/transport/twilio/requests.py",
        "twilio_caller/transport/twilio/routes.py"]
SKIPPED_CALLS = {"log", "logging"}  # deleting a log line changes nothing a test should see

COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
}


# -- mutations ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutation:
    index: int
    function: str  # the qualified name of the function it is in, as co_qualname spells it
    description: str  # "original → mutated"
    key: str = ""  # stable identity: module :: function :: description [#n]
    in_function: bool = True  # False: module or class body, run at import
    lines: tuple[int, ...] = ()  # the lines of the mutated code (run at import when not in_function)


def _text(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= 90 else text[:87] + "..."


def _negated(test: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=test)


def _candidates(node: ast.AST) -> Iterator[Callable[[ast.AST], ast.AST | None]]:
    """Each way to mutate this one node: a function from (a copy of) it to its replacement
    (None deletes a statement)."""
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            if type(op) in COMPARE_SWAPS:
                def swap(n: ast.AST, position: int = position) -> ast.AST:
                    assert isinstance(n, ast.Compare)
                    n.ops[position] = COMPARE_SWAPS[type(n.ops[position])]()
                    return n
                yield swap
    elif isinstance(node, ast.BoolOp):
        yield lambda n: ast.BoolOp(op=ast.Or() if isinstance(n.op, ast.And) else ast.And(), values=n.values)  # type: ignore[attr-defined]
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield lambda n: n.operand  # type: ignore[attr-defined]
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        yield lambda n: ast.BinOp(left=n.left, op=BINOP_SWAPS[type(n.op)](), right=n.right)  # type: ignore[attr-defined]
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield lambda n: ast.Constant(value=not n.value)  # type: ignore[attr-defined]
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield lambda n: ast.Constant(value=n.value + 1)  # type: ignore[attr-defined]
    elif isinstance(node, ast.If | ast.While | ast.IfExp) and not isinstance(node.test, ast.Compare | ast.BoolOp | ast.UnaryOp):
        def negate(n: ast.AST) -> ast.AST:
            n.test = _negated(n.test)  # type: ignore[attr-defined]
            return n
        yield negate
    elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield lambda n: ast.Return(value=ast.Constant(value=None))
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        yield lambda n: n.value  # type: ignore[attr-defined]
    elif isinstance(node, ast.Call):
        for position, keyword in enumerate(node.keywords):
            if keyword.arg is not None:
                def drop(n: ast.AST, position: int = position) -> ast.AST:
                    assert isinstance(n, ast.Call)
                    del n.keywords[position]
                    return n
                yield drop
    elif isinstance(node, ast.Expr) and isinstance(_awaited(node.value), ast.Call):
        if _call_root(_awaited(node.value)) not in SKIPPED_CALLS:
            yield lambda n: None
    elif isinstance(node, ast.AugAssign):
        yield lambda n: None


def _awaited(value: ast.expr) -> ast.expr:
    return value.value if isinstance(value, ast.Await) else value


def _call_root(node: ast.expr) -> str:
    func = node.func if isinstance(node, ast.Call) else node
    while isinstance(func, ast.Attribute):
        func = func.value
    return func.id if isinstance(func, ast.Name) else ""


Site = tuple[ast.AST, ast.AST, str, int | None, str, bool]


def _walk(tree: ast.Module) -> Iterator[Site]:
    """(node, its parent, the parent's field, the index in it, qualified function name,
    whether that is a function), in a fixed order. Docstrings, type annotations and
    `if TYPE_CHECKING` are not walked."""
    def visit(parent: ast.AST, scope: list[str], in_function: bool) -> Iterator[Site]:
        for name, value in ast.iter_fields(parent):
            if name in ("annotation", "returns", "type_comment", "decorator_list"):
                continue
            items = value if isinstance(value, list) else [value]
            for index, child in enumerate(items):
                if not isinstance(child, ast.AST) or _skipped(child, parent, name, index):
                    continue
                yield (child, parent, name, index if isinstance(value, list) else None,
                       ".".join(scope) or "<module>", in_function)
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                    label = child.name if not isinstance(child, ast.Lambda) else "<lambda>"
                    inner = [*scope, "<locals>", label] if in_function else [*scope, label]
                    yield from visit(child, inner, not isinstance(child, ast.ClassDef))
                else:
                    yield from visit(child, scope, in_function)

    yield from visit(tree, [], False)


def _skipped(node: ast.AST, parent: ast.AST, name: str, index: int) -> bool:
    docstring = (name == "body" and index == 0 and isinstance(node, ast.Expr)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
    type_checking = isinstance(node, ast.If) and _text(node.test) == "TYPE_CHECKING"
    arguments = isinstance(node, ast.arguments)  # default values are the public signature
    return docstring or type_checking or arguments or isinstance(parent, ast.JoinedStr)


def _describe(node: ast.AST, replacement: ast.AST | None) -> str:
    if replacement is None:
        return f"{_text(node)} → (deleted)"
    if isinstance(node, ast.Call) and isinstance(replacement, ast.Call):
        dropped = [k.arg for k in node.keywords if k.arg not in {r.arg for r in replacement.keywords}]
        return f"{_text(node.func)}(...) without {dropped[0]}="
    return f"{_text(node)} → {_text(replacement)}"


def mutations(module: str, source: str) -> list[Mutation]:
    tree = ast.parse(source)
    found: list[Mutation] = []
    seen: dict[str, int] = {}
    for node, _parent, _field, _index, function, in_function in _walk(tree):
        for candidate in _candidates(node):
            replacement = candidate(copy.deepcopy(node))
            description = _describe(node, replacement)
            base = f"{module} :: {function} :: {description}"
            seen[base] = seen.get(base, 0) + 1
            key = base if seen[base] == 1 else f"{base} #{seen[base]}"
            found.append(Mutation(len(found), function, description, key, in_function, _lines(node)))
    return found


def _lines(node: ast.AST) -> tuple[int, ...]:
    """The lines whose execution runs the mutated code: an `if`/`while` is negated in its
    test, not its body."""
    code = node.test if isinstance(node, ast.If | ast.While) else node
    first = getattr(code, "lineno", 0)
    return tuple(range(first, (getattr(code, "end_lineno", None) or first) + 1))


def mutant_source(source: str, index: int) -> str:
    tree = ast.parse(source)
    count = 0
    for node, parent, field_name, position, _function, _in_function in _walk(tree):
        for candidate in _candidates(node):
            if count == index:
                replacement = candidate(copy.deepcopy(node))
                if replacement is None:
                    replacement = ast.Pass()
                if position is None:
                    setattr(parent, field_name, replacement)
                else:
                    getattr(parent, field_name)[position] = replacement
                return ast.unparse(ast.fix_missing_locations(tree))
            count += 1
    raise IndexError(index)


# -- running the tests -------------------------------------------------------------------------

def _preload() -> None:
    """Import what every test run needs, once, before the workers are forked."""
    import pytest  # noqa: F401
    for name in ("twilio", "twilio.rest", "twilio.twiml.voice_response", "twilio.request_validator",
                 "starlette.applications", "uvicorn", "httpx", "phonenumbers", "hypothesis", "yaml",
                 "jsonschema", "pytest_asyncio", "anyio", "mcp"):
        try:
            __import__(name)
        except ImportError:
            pass


def _no_shrinking() -> None:
    """Hypothesis without its shrink and explain phases, for every test this process runs or
    forks: a property test that fails on a mutant has killed it at its first failing example;
    shrinking that example (tens of re-runs of a store-backed test) only made the kill late
    enough to be a timeout. Loaded before the tests are imported: a test's @settings copies
    the default profile when it is decorated."""
    try:
        from hypothesis import Phase, settings
    except ImportError:
        return
    settings.register_profile("mutation", phases=[p for p in Phase if p not in (Phase.shrink, Phase.explain)])
    settings.load_profile("mutation")


def _hook() -> Any:
    sys.path.insert(0, str(HOOK_DIR))
    try:
        import sitecustomize as hook  # the one in bin/mutation_hook
    finally:
        sys.path.remove(str(HOOK_DIR))
    return hook


TIMED_OUT = 124  # a worker's exit code when one test ran far longer than in the baseline


def _hung(test: str) -> None:
    """The watchdog: name the test that hung (TC_FAILED_OUT + ".hung"), end the worker. A test
    that failed before hanging — its teardown waits for a call the mutant broke — has killed
    the mutant: the worker ends as failed (a kill now, not a timeout and its recheck)."""
    failed = os.environ.get("TC_FAILED_OUT")
    if failed and Path(failed).exists():
        os._exit(1)
    if failed:
        Path(failed + ".hung").write_text(test)
    os._exit(TIMED_OUT)


class _Plugin:
    """Names the running test for the tracer (its coverage context, and the environment that
    spawned processes inherit), records each test's duration, and (given the baseline's
    durations) ends the worker when one test runs far past its usual time: a mutant that
    makes a test hang is ended in seconds, not at the end of every wait."""

    def __init__(self, limits: dict[str, float] | None = None, tracer: Any = None,
                 shard: tuple[int, int] | None = None) -> None:
        self.durations: dict[str, float] = {}
        self._shard = shard
        self.failed: str | None = None
        self.failures: list[str] = []  # every test that failed (a baseline shard runs on past a failure)
        self._limits = limits or {}
        self._tracer = tracer
        self._watchdog: threading.Timer | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items) -> None:  # type: ignore[no-untyped-def]
        """A shard (index, count) of the baseline keeps every count-th test from its index on,
        in collection order: each shard gets a part of every file, so the shards take about
        as long as each other with no durations known beforehand."""
        if self._shard is None:
            return
        index, count = self._shard
        kept = items[index::count]
        dropped = [item for position, item in enumerate(items) if position % count != index]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept

    def pytest_runtest_setup(self, item) -> None:  # type: ignore[no-untyped-def]
        os.environ["TC_TRACE_TEST"] = item.nodeid
        if self._tracer is not None:
            self._tracer.switch(item.nodeid)
        if item.nodeid in self._limits and self._watchdog is None:
            self._watchdog = threading.Timer(self._limits[item.nodeid], _hung, (item.nodeid,))
            self._watchdog.daemon = True
            self._watchdog.start()

    def pytest_runtest_logfinish(self, nodeid, location) -> None:  # type: ignore[no-untyped-def]
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def pytest_runtest_logreport(self, report) -> None:  # type: ignore[no-untyped-def]
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.when == "teardown" and report.passed and self.failed is None and os.environ.get("TC_FAILED_OUT"):
            with open(os.environ["TC_FAILED_OUT"] + ".passed", "a", encoding="utf-8") as passed:
                passed.write(report.nodeid + "\n")  # a recheck need not run it again
        if report.failed and report.nodeid not in self.failures:
            self.failures.append(report.nodeid)
        if report.failed and self.failed is None:
            self.failed = report.nodeid
            if os.environ.get("TC_FAILED_OUT"):
                Path(os.environ["TC_FAILED_OUT"]).write_text(report.nodeid)


PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts="]


def _worker(args: list[str], env: dict[str, str], trace_out: str | None, durations_out: str | None,
            limits: dict[str, float] | None = None, swap: Swap | None = None,
            shard: tuple[int, int] | None = None) -> int:
    """In a forked child: pytest against the mutant. Given a `swap`, the child of a warm
    process (project and tests imported, see warm_up) puts the mutated code into the
    functions already loaded; otherwise a fresh import of the project, mutant included.
    Processes the tests spawn import the mutant through the hook (env) either way."""
    os.setpgrp()
    os.environ.update(env)
    sys.dont_write_bytecode = True
    hook = _hook()
    if swap is None:
        package = os.environ.get("TC_MUTANT_MODULE", "twilio_caller").split(".", 1)[0]
        for name in [n for n in sys.modules if n.startswith(("twilio_caller", package, "tests", "conftest", "test_"))]:
            del sys.modules[name]
        hook.install_mutant()
    else:
        swap.apply()
    tracer = hook.install_tracer() if trace_out else None
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    plugin = _Plugin(limits, tracer, shard)
    fail_fast = ["-x"] if shard is None else []  # a baseline shard runs all its tests; a failed one is re-run
    code = pytest.main([*fail_fast, *PYTEST_ARGS, *args], plugins=[plugin])
    if tracer is not None:
        tracer.flush()
    if durations_out:
        Path(durations_out).write_text(json.dumps(plugin.durations))
        Path(durations_out + ".failed").write_text(json.dumps(plugin.failures))
    return int(code)


def start_tests(args: list[str], env: dict[str, str], *, trace_out: str | None = None,
                durations_out: str | None = None, limits: dict[str, float] | None = None,
                swap: Swap | None = None, shard: tuple[int, int] | None = None) -> int:
    """Fork a pytest worker; returns its pid (also its process group). What this process holds
    is frozen first (gc.freeze): the worker's collections — pytest runs gc.collect several
    times as it ends, for unraisable exceptions — then skip the whole inherited heap instead
    of walking it and copying every page they touch (half a worker's CPU, measured)."""
    sys.stdout.flush()
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        try:
            code = _worker(args, env, trace_out, durations_out, limits, swap, shard)
        except BaseException:
            code = 3
        os._exit(code)
    return pid


def poll_tests(pid: int, deadline: float) -> str | None:
    """None while the worker runs; then 'passed', 'failed', 'timeout', 'error' (the tests
    could not run: the mutant broke an import, the conftest or the collection) or 'broken'
    (pytest found none of the selected tests: a fault of this tool, never a kill)."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        if time.monotonic() < deadline:
            return None
        _kill_group(pid)
        os.waitpid(pid, 0)
        return "timeout"
    _kill_group(pid)  # whatever the tests left running
    return {0: "passed", 1: "failed", 5: "broken", TIMED_OUT: "timeout"}.get(os.waitstatus_to_exitcode(status), "error")


# -- the warm process: project and tests imported once, each mutant swapped in after the fork --

def warm_up(tests: list[str]) -> bool:
    """Import the project and collect `tests` in this process (pytest --collect-only), so each
    worker forked from it starts with everything loaded; False when collection fails (every
    mutant then runs in a fresh import)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = pytest.main(["--collect-only", *PYTEST_ARGS, *tests])
    return code == 0


@dataclass
class Swap:
    """The mutated code of one top-level function or method, and the loaded functions whose
    code it replaces (every object holding that function — `from module import name`
    included — then runs the mutant)."""
    functions: list[FunctionType]
    code: CodeType

    def apply(self) -> None:
        for function in self.functions:
            function.__code__ = self.code


class WarmModule:
    """The functions of one loaded module, by the qualified name of their code."""

    def __init__(self, dotted: str) -> None:
        try:  # a module the tests import only when they run (not at collection) is loaded here
            module: ModuleType | None = importlib.import_module(dotted)
        except Exception:  # noqa: BLE001 - then every mutant of it imports afresh
            module = None
        self.filename = getattr(module, "__file__", None) or ""
        self.functions: dict[str, list[FunctionType]] = {}
        gc.unfreeze()  # gc.get_objects() does not list what start_tests froze
        for found in gc.get_objects():
            if isinstance(found, FunctionType) and found.__code__.co_filename == self.filename:
                self.functions.setdefault(found.__code__.co_qualname, []).append(found)

    def swap(self, mutation: Mutation, mutant: str) -> Swap | None:
        """How to run `mutant` here by swapping code: None (a fresh import is needed) for code
        run at import (module and class bodies) or a function not loaded exactly once."""
        if not self.filename or not mutation.in_function:
            return None
        target = mutation.function.split(".<locals>.", 1)[0]
        loaded = self.functions.get(target, [])
        codes = list(_codes_named(compile(mutant, self.filename, "exec"), target))
        if len(codes) != 1 or len({id(f.__code__) for f in loaded}) != 1:
            return None
        if any(len(f.__code__.co_freevars) != len(codes[0].co_freevars) for f in loaded):
            return None
        return Swap(loaded, codes[0])


def _codes_named(code: CodeType, qualname: str) -> Iterator[CodeType]:
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            if constant.co_qualname == qualname:
                yield constant
            yield from _codes_named(constant, qualname)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Baseline:
    order: list[str]  # test ids, fastest first
    durations: dict[str, float]
    covering: dict[int, set[str]] = field(default_factory=dict)  # line → the tests that ran it

    def restricted(self, tests: list[str]) -> Baseline:
        """The same run seen from one module: only the tests of its own files (`tests`)."""
        files = set(tests)

        def own(test: str) -> bool:
            return test.split("::", 1)[0] in files

        return Baseline([t for t in self.order if own(t)], {t: d for t, d in self.durations.items() if own(t)},
                        {line: {t for t in ran if own(t)} for line, ran in self.covering.items()})


CACHE = ROOT / ".mutation-cache"  # coverage maps of earlier baselines, by the hash of what they ran


def _fingerprint(modules: list[str], tests: list[str]) -> str:
    """A hash of everything a baseline's outcome depends on: the package, the tests (all of
    tests/, for their helpers and conftest), the hook, this file, and what is asked."""
    digest = hashlib.sha256(json.dumps([modules, tests]).encode())
    for folder in ("twilio_caller", "tests", "bin/mutation_hook"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:32]


def baselines(modules: list[str], tests: list[str], work: Path, deselected: list[str] | None = None,
              shards: int = 1) -> dict[str, Baseline]:
    """The tests of all `modules` run once, unmutated, under coverage.py with one context per
    test (spawned processes included), split over `shards` workers at once: which test ran
    which line of each module, and how long each test took. Read from CACHE when the package,
    the tests and the tool are unchanged."""
    cached = CACHE / f"{_fingerprint(modules, [*tests, *(deselected or [])])}.json"
    if cached.exists():
        try:
            return _decoded(json.loads(cached.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            cached.unlink(missing_ok=True)
    paths = [str((ROOT / module).resolve()) for module in modules]
    args = [*tests, *(f"--deselect={test}" for test in deselected or [])]
    times, dropped = _sharded_baseline(args, paths, work, max(1, shards))
    if not times:
        raise SystemExit(f"no test ran for {', '.join(modules)}: run bin/test {' '.join(tests)}")
    order = sorted(times, key=times.__getitem__)
    found = {module: Baseline(order, times, _covering(work, ROOT / module, dropped)) for module in modules}
    CACHE.mkdir(exist_ok=True)
    partial = cached.with_suffix(".part")
    partial.write_text(json.dumps(_encoded(found)), encoding="utf-8")
    partial.replace(cached)
    return found


def _sharded_baseline(args: list[str], paths: list[str], work: Path, shards: int) -> tuple[dict[str, float], set[str]]:
    """Run the baseline's tests in `shards` workers at once (each every shards-th test, see
    _Plugin), each tracing into its own folder, each running on past a failing test; returns
    every test's duration, and the tests whose shard's coverage is not used. The tests mostly
    wait (servers, simulated calls), so shards overlap well even on few cores. A test that
    failed in its shard (a busy machine can fail a timing-sensitive test) is run again alone
    after the others, into a folder of its own, its shard's record of it dropped; a shard that
    hung or could not run is run again whole. Failing again stops the tool."""
    started, deadline = time.monotonic(), time.monotonic() + 1800
    running = {_start_traced(args, paths, work / f"shard-{index}", (index, shards)): index for index in range(shards)}
    again: list[int] = []
    failed: list[str] = []
    while running:
        for pid, index in list(running.items()):
            outcome = poll_tests(pid, deadline)
            if outcome is None:
                continue
            del running[pid]
            failures = work / f"shard-{index}" / "durations.json.failed"
            if outcome == "failed" and failures.exists():
                failed += json.loads(failures.read_text())
            elif outcome not in ("passed", "broken"):  # broken: no test fell to this shard
                again.append(index)
        time.sleep(0.05)
    if again or failed:
        print(f"baseline shards: {time.monotonic() - started:.1f} s; run again alone: "
              + ", ".join([*(f"shard {index + 1} of {shards}" for index in again), *failed]), flush=True)
    for index in again:
        _run_alone(args, paths, work / f"shard-{index}", (index, shards))
    if failed:
        _run_alone([*failed, *(a for a in args if a.startswith("--deselect"))], paths, work / "again", None)
    times: dict[str, float] = {}
    for durations in sorted(work.glob("shard-*/durations.json")):
        times.update({test: took for test, took in json.loads(durations.read_text()).items() if test not in failed})
    if failed:
        times.update(json.loads((work / "again" / "durations.json").read_text()))
    return times, set(failed)


def _run_alone(args: list[str], paths: list[str], folder: Path, shard: tuple[int, int] | None) -> None:
    pid = _start_traced(args, paths, folder, shard)
    deadline = time.monotonic() + 1800
    while (outcome := poll_tests(pid, deadline)) is None:
        time.sleep(0.05)
    if outcome not in ("passed", "broken"):
        failed = folder / "failed"
        raise SystemExit(f"the tests do not pass without mutations ({outcome}"
                         + (f": {failed.read_text()}" if failed.exists() else "") + "): run bin/test "
                         + " ".join(a for a in args if not a.startswith("--")))


def _start_traced(args: list[str], paths: list[str], folder: Path, shard: tuple[int, int] | None) -> int:
    """Fork a baseline worker tracing `paths` into `folder` (emptied first)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    trace = folder / "coverage"
    env = {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "TC_TRACE_FILE": str(trace), "TC_TRACE_MODULES": os.pathsep.join(paths), "TC_TRACE_TEST": "",
           "TC_FAILED_OUT": str(folder / "failed")}
    return start_tests(args, env, trace_out=str(trace), durations_out=str(folder / "durations.json"), shard=shard)


def _encoded(found: dict[str, Baseline]) -> dict[str, Any]:
    return {module: {"order": b.order, "durations": b.durations,
                     "covering": {str(line): sorted(ran) for line, ran in b.covering.items()}}
            for module, b in found.items()}


def _decoded(data: dict[str, Any]) -> dict[str, Baseline]:
    return {module: Baseline(list(b["order"]), dict(b["durations"]),
                             {int(line): set(ran) for line, ran in b["covering"].items()})
            for module, b in data.items()}


def _covering(work: Path, path: Path, dropped: set[str] | None = None) -> dict[int, set[str]]:
    """Which tests ran which line of `path`, from every baseline folder; a test in `dropped`
    failed in its shard and counts only as its run alone (folder "again") recorded it."""
    from coverage import CoverageData

    covering: dict[int, set[str]] = {}
    wanted = os.path.realpath(path)
    for data_file in sorted([*work.glob("shard-*/coverage.*"), *work.glob("again/coverage.*")]):
        skipped = set() if data_file.parent.name == "again" else (dropped or set())
        data = CoverageData(str(data_file))
        data.read()
        for measured in data.measured_files():
            if os.path.realpath(measured) != wanted:
                continue
            for line, contexts in data.contexts_by_lineno(measured).items():
                covering.setdefault(line, set()).update(c for c in contexts if c and c not in skipped)
    return covering


def _selection_summary(found: list[Mutation], base: Baseline, source: str) -> str:
    """How much these mutants would run if every test that ran their function ran (the
    selection before per-line coverage) against what runs now: tests and baseline seconds
    per mutant, the most a survivor costs (a kill stops at the first failing test)."""
    spans: dict[str, set[int]] = {}
    for node, _parent, _field, _index, function, _in_function in _walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            spans.setdefault(function, set()).add(node.lineno)  # its body is another function's
        elif hasattr(node, "lineno"):
            spans.setdefault(function, set()).update(range(node.lineno, (getattr(node, "end_lineno", None) or node.lineno) + 1))
    by_line = [tests_for(m, base) for m in found]
    by_function = [tests_for(Mutation(m.index, m.function, m.description, m.key, m.in_function,
                                      tuple(spans.get(m.function, ())) if m.in_function else ()), base)
                   for m in found]
    count = max(1, len(found))

    def seconds(selections: list[list[str]]) -> float:
        return sum(base.durations.get(t, 0.0) for tests in selections for t in tests) / count

    return (f"  tests per mutant: {sum(map(len, by_line)) / count:.1f} by line "
            f"({seconds(by_line):.1f} s), {sum(map(len, by_function)) / count:.1f} by function "
            f"({seconds(by_function):.1f} s)")


def tests_for(mutation: Mutation, base: Baseline) -> list[str]:
    """The tests that ran a line of the mutated code; code run at import (module and class
    bodies: a constant, a default, a decorator) runs every test of the module: what reads a
    value made at import — a default argument, a class attribute, another constant, a test —
    is not found by tracing its lines (they run before any test, and the readers of a name
    missed those; issue 14)."""
    if not mutation.in_function:
        return list(base.order)
    wanted = set().union(*(base.covering.get(line, set()) for line in mutation.lines))
    return [test for test in base.order if test in wanted]


@dataclass
class Result:
    mutation: Mutation
    outcome: str  # killed, survived, timeout, error, uncovered, listed, broken


def test_limit(seconds: float) -> float:
    """How long one test may run against a mutant, given its baseline time (measured under
    coverage, so slower than a mutant's run): 5x that, at least 2 s, at most the former
    4 s + 2.5x. A test that took 0.4 s is ended at 2 s (was 5 s), one of 1 s at 5 s (6.5 s);
    a test of 2 s or more keeps 4 s + 2.5x. A passing recheck (RECHECK_SLACK) still makes a
    survivor of any mutant a busy machine timed out."""
    return min(4 + 2.5 * seconds, max(2.0, 5 * seconds))


RECHECK_SLACK = 3.0  # a timed-out mutant is run again alone with this many times its limits


def _start_mutant(mutation: Mutation, source: str, dotted: str, selected: list[str], base: Baseline,
                  work: Path, warm: WarmModule | None, slack: float = 1.0) -> tuple[int, float, bool]:
    """Fork a worker running `selected` against the mutant; returns its pid, its deadline and
    whether it swapped the mutant into the warm process (else: a fresh import)."""
    mutant = work / f"mutant-{mutation.index}.py"
    text = mutant_source(source, mutation.index)
    mutant.write_text(text, encoding="utf-8")
    swap = warm.swap(mutation, text) if warm is not None else None
    env = {"PYTHONPATH": os.pathsep.join([str(HOOK_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "TC_MUTANT_MODULE": dotted, "TC_MUTANT_SOURCE": str(mutant),
           "TC_FAILED_OUT": str(work / f"failed-{mutation.index}")}
    budget = slack * (30 + 3 * sum(base.durations.get(t, 1.0) for t in selected))
    limits = {t: slack * test_limit(base.durations.get(t, 1.0)) for t in selected}
    return start_tests(selected, env, limits=limits, swap=swap), time.monotonic() + budget, swap is not None


def tests_of(module: str) -> list[str]:
    return [str(test.relative_to(ROOT)) for pattern in TARGETS[module] for test in sorted(ROOT.glob(pattern))]


def run_modules(modules: list[str], only: list[int] | None, verbose: bool, jobs: int,
                skip: set[str] | None = None, deselected: list[str] | None = None,
                cold: bool = False) -> dict[str, list[Result]]:
    """One baseline for all `modules` (the union of their tests, each module's lines traced;
    the gate's modules share most of their tests), then every module's mutants in one pool of
    `jobs` workers, each forked from this process once it has imported the project and
    collected the tests (`cold`: each worker imports them afresh, the former method, kept to
    compare); the mutants that timed out are run again at the end, all modules' together."""
    tests = list(dict.fromkeys(test for module in modules for test in tests_of(module)))
    sources = {module: _source_of(module) for module in modules}  # the mutants' source: see _ModuleRun.start
    with tempfile.TemporaryDirectory(prefix="mutation-") as temporary:
        started, cpu = time.monotonic(), _cpu()
        found = baselines(modules, tests, Path(temporary), deselected, jobs)
        print(f"baseline of {len(tests)} test files for {len(modules)} module(s): "
              f"{time.monotonic() - started:.1f} s (cpu {_cpu() - cpu:.1f} s)", flush=True)
    started, cpu = time.monotonic(), _cpu()
    warmed = not cold and warm_up(tests)
    if not cold:
        print(f"warm-up (project imported, tests collected once): {time.monotonic() - started:.1f} s "
              f"(cpu {_cpu() - cpu:.1f} s)" + ("" if warmed else " FAILED: every mutant imports afresh"), flush=True)
    with tempfile.TemporaryDirectory(prefix="mutation-") as temporary:
        runs = [_ModuleRun.of(module, sources[module], found[module].restricted(tests_of(module)), only,
                              WarmModule(_dotted(module)) if warmed else None, Path(temporary) / str(number))
                for number, module in enumerate(modules)]
        started, cpu = time.monotonic(), _cpu()
        _run_pool(runs, verbose, jobs, skip)
        print(f"mutants of {len(modules)} module(s): {time.monotonic() - started:.0f} s, cpu {_cpu() - cpu:.0f} s",
              flush=True)
    return {run.module: sorted(run.results, key=lambda result: result.mutation.index) for run in runs}


def _cpu() -> float:
    """CPU seconds, user + system, of this process and the workers it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _dotted(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


@dataclass
class _ModuleRun:
    """One module's mutants in the shared pool, and what its runs so far taught."""
    module: str
    source: str
    base: Baseline
    warm: WarmModule | None
    work: Path
    queue: list[Mutation]
    results: list[Result] = field(default_factory=list)
    killers: dict[str, str] = field(default_factory=dict)  # function → the test that last killed one of its mutants
    line_killers: dict[int, str] = field(default_factory=dict)  # line → the test that last killed a mutant of it
    selections: dict[int, list[str]] = field(default_factory=dict)  # mutant → the tests it ran
    hangers: set[str] = field(default_factory=set)  # tests a mutant made hang: tried last (others fail faster)
    kills: dict[str, int] = field(default_factory=dict)  # test → mutants it killed so far: strong tests go first
    swapped: list[bool] = field(default_factory=list)  # per mutant run: into the warm process (True) or afresh
    running: int = 0

    @classmethod
    def of(cls, module: str, source: str, base: Baseline, only: list[int] | None, warm: WarmModule | None,
           work: Path) -> _ModuleRun:
        found = mutations(module, source)
        work.mkdir(parents=True)
        print(f"{module}: {len(found)} mutants ({len(base.order)} tests)", flush=True)
        print(_selection_summary(found, base, source), flush=True)
        return cls(module, source, base, warm, work, [m for m in found if only is None or m.index in only])

    @property
    def dotted(self) -> str:
        return _dotted(self.module)

    def start(self, mutation: Mutation, slack: float = 1.0) -> tuple[int, float, bool]:
        """Fork the worker of a mutant built from the source read before the baseline (its
        coverage map, keys and mutants all come from it), refusing when the file on disk no
        longer holds that source: the warm process's functions, a fresh import's neighbours
        and the lines traced would then belong to another text (issue 14)."""
        if _source_of(self.module) != self.source:
            raise SourceChanged(f"{self.module} changed on disk since the run read it (before the baseline): "
                                "its mutants no longer match the file; run again on a frozen copy of the tree "
                                "(no edits while bin/mutation runs)")
        return _start_mutant(mutation, self.source, self.dotted, self.selections[mutation.index], self.base,
                             self.work, self.warm, slack)

    def cost(self) -> float:
        """What its mutants' kills cost (a kill stops at the first failing test, most often the
        first: the fastest): the costliest module starts first, its slow mutants not last."""
        return sum(min((self.base.durations.get(t, 1.0) for t in tests_for(m, self.base)), default=0.0)
                   for m in self.queue)

    def next_selection(self, mutation: Mutation) -> list[str]:
        selected = tests_for(mutation, self.base)
        selected.sort(key=lambda test: _priority(test, self.kills, self.hangers, self.base))
        killer = next((self.line_killers[line] for line in mutation.lines if self.line_killers.get(line) in selected),
                      self.killers.get(mutation.function))
        if killer in selected:  # the test most likely to fail goes first: the last killer of a mutant
            selected.remove(killer)  # of the same line (a boundary's test), else of the same function
            selected.insert(0, killer)
        return selected

    def learn(self, mutation: Mutation) -> tuple[Path, Path]:
        failed = self.work / f"failed-{mutation.index}"
        hung = self.work / f"failed-{mutation.index}.hung"
        if hung.exists():
            self.hangers.add(hung.read_text())
        if failed.exists():
            killer = self.killers[mutation.function] = failed.read_text()
            self.line_killers.update(dict.fromkeys(mutation.lines, killer))
            self.kills[killer] = self.kills.get(killer, 0) + 1
        return failed, hung

    def recheck_seconds(self, mutation: Mutation) -> float:
        """The longest its recheck may run: the hung test's limit (the last one), with slack."""
        return sum(RECHECK_SLACK * test_limit(self.base.durations.get(t, 1.0))
                   for t in self.selections.get(mutation.index, []))

    def recheck_order(self) -> None:
        """A recheck tries the tests that hung last, and not those this very mutant passed."""
        for index, tests in self.selections.items():
            passed = self.work / f"failed-{index}.passed"
            done = set(passed.read_text(encoding="utf-8").split()) if passed.exists() else set()
            tests[:] = sorted((t for t in tests if t not in done), key=lambda test: test in self.hangers)


class SourceChanged(SystemExit):
    """A module under test changed on disk during its mutation run: the run stops."""


def _source_of(module: str) -> str:
    return (ROOT / module).read_text(encoding="utf-8")


def _run_pool(runs: list[_ModuleRun], verbose: bool, jobs: int, skip: set[str] | None) -> None:
    """_pool, ending the workers still running when it stops early (a module changed on disk)."""
    running: dict[int, tuple[_ModuleRun, Mutation, float, float, Result | None]] = {}
    try:
        _pool(runs, verbose, jobs, skip, running)
    finally:
        for pid in running:
            _kill_group(pid)
            os.waitpid(pid, 0)


def _pool(runs: list[_ModuleRun], verbose: bool, jobs: int, skip: set[str] | None,
          running: dict[int, tuple[_ModuleRun, Mutation, float, float, Result | None]]) -> None:
    """Every module's mutants, `jobs` at a time, the costliest module's first (the next
    module's mutants fill the workers while a module's last ones run); mutants whose key is in
    `skip` (the equivalents docs/mutation.md lists, in gate mode) are reported as listed
    without a run. A module's timed-out mutants are rechecked (see _recheck_next) as soon as
    its first pass is over — what it taught about hanging tests is then complete — the
    longest recheck first, ahead of the first-pass mutants still queued: a recheck of an
    end-to-end test runs minutes and would otherwise be the run's tail."""
    started = time.monotonic()
    pending = sorted(runs, key=_ModuleRun.cost, reverse=True)
    rechecks: list[tuple[_ModuleRun, Result]] = []
    while pending or rechecks or running:
        while len(running) < jobs and (rechecks or any(run.queue for run in pending)):
            if rechecks:
                run, result = rechecks.pop(0)
                started_recheck = _recheck_next(run, result)
                if started_recheck is not None:
                    running[started_recheck[0]] = (run, result.mutation, started_recheck[1], time.monotonic(), result)
                continue
            run = next(run for run in pending if run.queue)
            mutation = run.queue.pop(0)
            if skip and mutation.key in skip:
                run.results.append(Result(mutation, "listed"))
                continue
            selected = run.next_selection(mutation)
            if not selected:
                run.results.append(Result(mutation, "uncovered"))
                continue
            run.selections[mutation.index] = selected
            pid, deadline, warmed = run.start(mutation)
            run.swapped.append(warmed)
            run.running += 1
            running[pid] = (run, mutation, deadline, time.monotonic(), None)
        for pid, (run, mutation, deadline, began, rechecked) in list(running.items()):
            outcome = poll_tests(pid, deadline)
            if outcome is None:
                continue
            del running[pid]
            verdict = {"failed": "killed", "passed": "survived"}.get(outcome, outcome)
            failed, hung = run.work / f"failed-{mutation.index}", run.work / f"failed-{mutation.index}.hung"
            if rechecked is not None:
                rechecked.outcome = verdict
                print(f"  [{mutation.index}] timeout, run again with {RECHECK_SLACK:g}x the limits: "
                      f"{verdict} ({time.monotonic() - began:.1f} s): {mutation.key}"
                      + _culprit(failed, hung, verbose), flush=True)
                continue
            run.running -= 1
            run.learn(mutation)
            run.results.append(Result(mutation, verdict))
            if verbose or verdict in ("survived", "broken"):
                print(f"  [{mutation.index}] {verdict} ({time.monotonic() - began:.1f} s): {mutation.key}"
                      + _culprit(failed, hung, verbose), flush=True)
        for run in [run for run in pending if not run.queue and not run.running]:
            pending.remove(run)
            print(f"{run.module}: first pass done at {time.monotonic() - started:.0f} s ({sum(run.swapped)} of "
                  f"{len(run.swapped)} mutants swapped into the warm process, the others imported afresh)", flush=True)
            run.recheck_order()
            rechecks += [(run, r) for r in run.results if r.outcome == "timeout"]
            rechecks.sort(key=lambda item: item[0].recheck_seconds(item[1].mutation), reverse=True)
        time.sleep(0.02)


def _culprit(failed: Path, hung: Path, verbose: bool) -> str:
    """Verbose: the test that killed the mutant or that it made hang."""
    if verbose and failed.exists():
        return f"\n      failed: {failed.read_text()}"
    if verbose and hung.exists():
        return f"\n      hung: {hung.read_text()}"
    return ""


def _priority(test: str, kills: dict[str, int], hangers: set[str], base: Baseline) -> tuple[bool, int, float]:
    """Tests a mutant made hang go last, then the tests that killed most, then the fastest."""
    return (test in hangers, -kills.get(test, 0), base.durations.get(test, 1.0))


def _recheck_next(run: _ModuleRun, result: Result) -> tuple[int, float] | None:
    """Start the recheck of a mutant that ran past its time limits: once more with
    RECHECK_SLACK times the limits, after its module's first pass: a machine busy with other
    work can make an unmutated test that slow, and a kill by a tired machine would hide a
    survivor. The tests this mutant already passed in its first run are not run again (a pass
    is a pass however busy the machine was): the hung test and those never reached, the hung
    last. Timing out again stays 'timeout' (the mutant makes the tests hang: a detected
    change, listed on its own); passing is 'survived', failing 'killed'. None: nothing was
    left to run (every test passed; the worker's budget ran out), a survivor."""
    (run.work / f"failed-{result.mutation.index}").unlink(missing_ok=True)
    (run.work / f"failed-{result.mutation.index}.hung").unlink(missing_ok=True)
    if not run.selections[result.mutation.index]:
        result.outcome = "survived"
        return None
    pid, deadline, _warmed = run.start(result.mutation, RECHECK_SLACK)
    return pid, deadline


def listed_equivalents() -> set[str]:
    """The survivors docs/mutation.md explains (lines "- `KEY` — why")."""
    if not LISTED.exists():
        return set()
    return {match.group(1) for match in re.finditer(r"^- `([^`]+)`", LISTED.read_text(encoding="utf-8"), re.M)}


def report(results: dict[str, list[Result]]) -> list[str]:
    listed = listed_equivalents()
    unexplained = []
    timeouts: list[str] = []
    print("\nmodule                              mutants  killed  timeout  listed  unexplained  kill rate")
    for module, module_results in results.items():
        survivors = [r for r in module_results if r.outcome in ("survived", "uncovered", "listed", "broken")]
        killed = sum(r.outcome in ("killed", "error") for r in module_results)
        timed_out = [r for r in module_results if r.outcome == "timeout"]
        timeouts += [r.mutation.key for r in timed_out]
        new = [r for r in survivors if r.mutation.key not in listed]
        unexplained += [f"{r.outcome}: {r.mutation.key}" for r in new]
        total = len(module_results)
        rate = 100.0 * (killed + len(timed_out)) / total if total else 100.0
        print(f"{module:36} {total:7} {killed:7} {len(timed_out):8} {len(survivors) - len(new):7} "
              f"{len(new):12}  {rate:6.1f}%")
    if timeouts:
        print("\nkilled by timeout (the tests hung twice, the second time with "
              f"{RECHECK_SLACK:g}x the time limits):")
        for key in timeouts:
            print(f"- `{key}`")
    if unexplained:
        print("\nsurvivors not explained in docs/mutation.md:")
        for line in unexplained:
            print(f"- `{line.split(': ', 1)[1]}` ({line.split(': ', 1)[0]})")
    return unexplained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {', '.join(TARGETS)})")
    parser.add_argument("--gate", action="store_true",
                        help=f"CI: only {', '.join(GATE)}, without re-running the survivors docs/mutation.md lists")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", type=int, action="append", help="run only the mutant with this index")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every mutant's outcome")
    parser.add_argument("--cold", action="store_true",
                        help="every mutant's worker imports the project afresh (slow; to compare with the warm runner)")
    parser.add_argument("--deselect", action="append", metavar="TEST_ID",
                        help="leave out a test that fails without mutations (say which in the report)")
    args = parser.parse_args(argv)
    modules = args.modules or (GATE if args.gate else list(TARGETS))
    unknown = [m for m in modules if m not in TARGETS]
    if unknown:
        parser.error(f"no tests are configured for {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.list:
        for module in modules:
            for mutation in mutations(module, (ROOT / module).read_text(encoding="utf-8")):
                print(f"[{mutation.index}] {mutation.key}")
        return 0
    os.chdir(ROOT)
    _preload()
    _no_shrinking()
    skip = listed_equivalents() if args.gate else None
    if args.deselect:
        print(f"left out (failing without mutations): {', '.join(args.deselect)}", flush=True)
    results = run_modules(modules, args.only, args.verbose, max(1, args.jobs), skip, args.deselect, args.cold)
    return 1 if report(results) else 0


if __name__ == "__main__":
    sys.exit(main())
