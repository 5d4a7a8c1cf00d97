"""Loaded only by bin/mutation (its folder is put first on PYTHONPATH): makes every Python
process of a test run — the pytest worker and whatever it spawns — see the same mutant, and
records which lines of the module under test each test ran (coverage.py, one dynamic context
per test), so each mutant runs only the tests that ran its lines."""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

MODULE = "TC_MUTANT_MODULE"  # the dotted module name to mutate
SOURCE = "TC_MUTANT_SOURCE"  # a file holding its mutated source
TRACE_FILE = "TC_TRACE_FILE"  # when set: the coverage data file (each process adds a suffix)
TRACE_MODULES = "TC_TRACE_MODULES"  # the files whose lines are recorded (os.pathsep-separated)
TRACE_TEST = "TC_TRACE_TEST"  # the test running now: the context lines are recorded under

_installed: dict[str, Any] = {}  # what this process installed already (the hook may be imported twice)


class _MutantLoader(importlib.abc.Loader):
    def __init__(self, path: str, source: str) -> None:
        self._path, self._source = path, source

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(compile(self._source, self._path, "exec"), module.__dict__)  # noqa: S102


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, source: str) -> None:
        self._name, self._source = name, source

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self._name:
            return None
        sys.meta_path.remove(self)
        try:
            real = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if real is None or real.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, real.origin, loader=_MutantLoader(real.origin, self._source))


def install_mutant() -> None:
    name, source_file = os.environ.get(MODULE), os.environ.get(SOURCE)
    if name and source_file and "mutant" not in _installed:
        with open(source_file, encoding="utf-8") as handle:
            _installed["mutant"] = _MutantFinder(name, handle.read())
        sys.meta_path.insert(0, _installed["mutant"])


class Tracer:
    """Line coverage of the traced files, per test: coverage.py's C tracer (all threads
    started after it), its dynamic context switched to the test id by the pytest plugin; a
    spawned process records under the test that was running when it started."""

    def __init__(self, files: list[str], out: str) -> None:
        import coverage

        self._coverage = coverage.Coverage(data_file=out, data_suffix=True, include=files,
                                           config_file=False, branch=False)
        self._coverage.start()
        self.switch(os.environ.get(TRACE_TEST, ""))
        atexit.register(self.flush)

    def switch(self, test: str) -> None:
        self._coverage.switch_context(test)

    def flush(self) -> None:
        if "flushed" not in _installed:
            _installed["flushed"] = True
            self._coverage.stop()
            self._coverage.save()


def install_tracer() -> Tracer | None:
    out, files = os.environ.get(TRACE_FILE), os.environ.get(TRACE_MODULES)
    if not out or not files:
        return None
    if "tracer" not in _installed:
        _installed["tracer"] = Tracer([os.path.realpath(f) for f in files.split(os.pathsep)], out)
    tracer: Tracer = _installed["tracer"]
    return tracer


install_mutant()
install_tracer()
