"""Loaded only by bin/mutation (its folder is put first on PYTHONPATH): makes every Python
process of a test run — the pytest worker and whatever it spawns — see the same mutant, and
records which functions of the module under test each test ran (for choosing tests)."""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import os
import sys
import threading
from types import FrameType, ModuleType
from typing import Any

MODULE = "TC_MUTANT_MODULE"  # the dotted module name to mutate
SOURCE = "TC_MUTANT_SOURCE"  # a file holding its mutated source
TRACE_FILE = "TC_TRACE_FILE"  # when set: where "test id<TAB>function" lines go
TRACE_MODULES = "TC_TRACE_MODULES"  # the files whose functions are traced (os.pathsep-separated)
TRACE_TEST = "TC_TRACE_TEST"  # the test running now


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
    if name and source_file:
        with open(source_file, encoding="utf-8") as handle:
            sys.meta_path.insert(0, _MutantFinder(name, handle.read()))


class _Tracer:
    """Which functions of the traced files ran, per test (the test id is read from the
    environment, which the pytest plugin sets around each test)."""

    def __init__(self, files: set[str], out: str) -> None:
        self.files, self.out = files, out
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code.co_filename in self.files:
            self.seen.add((os.environ.get(TRACE_TEST, ""), code.co_filename, code.co_qualname))

    def flush(self) -> None:
        if not self.seen:
            return
        with open(self.out, "a", encoding="utf-8") as handle:
            handle.writelines(f"{test}\t{path}\t{name}\n" for test, path, name in sorted(self.seen))
        self.seen.clear()


def install_tracer() -> _Tracer | None:
    out, files = os.environ.get(TRACE_FILE), os.environ.get(TRACE_MODULES)
    if not out or not files:
        return None
    tracer = _Tracer({os.path.realpath(f) for f in files.split(os.pathsep)}, out)
    sys.setprofile(tracer)
    threading.setprofile(tracer)
    atexit.register(tracer.flush)
    return tracer


install_mutant()
install_tracer()
