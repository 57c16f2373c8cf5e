"""Problems of one's own: a factory named by ``FILE.py:NAME`` or ``package.module:NAME``.

A spec names a callable ``(**options) -> Problem`` outside the registry::

    load_factory("my_problems.py:make_problem")      # a Python file, relative or absolute
    load_factory("mypkg.problems:make_heat")         # an importable module

``pinnopt solve SPEC -p KEY=VALUE`` calls the factory with the ``-p`` options and records
``resolve_spec(SPEC)`` (a file made absolute) as the problem, so ``--resume`` rebuilds it from
any working directory. Every error is a ``ValueError`` that names the spec.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Callable


def is_spec(name: str) -> bool:
    """Whether ``name`` is a ``TARGET:ATTRIBUTE`` spec rather than a registered problem name."""
    return isinstance(name, str) and ":" in name


def _split(spec: str) -> tuple[str, str]:
    # rpartition: the attribute never holds a colon, a file path might (a Windows drive letter).
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ValueError(f"problem {spec!r}: expected FILE.py:NAME or package.module:NAME")
    return target, attr


def _is_file(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


def resolve_spec(spec: str) -> str:
    """``spec`` with a file path made absolute (a module spec is returned as it is)."""
    target, attr = _split(spec)
    if _is_file(target):
        return f"{os.path.abspath(os.path.expanduser(target))}:{attr}"
    return spec


def spec_label(spec: str) -> str:
    """A short name for run directories: ``my_problems.make_problem`` for ``.../my_problems.py:make_problem``."""
    target, attr = _split(spec)
    stem = os.path.splitext(os.path.basename(target))[0] if _is_file(target) else target
    return f"{stem}.{attr}"


def _load_file(spec: str, path: str) -> ModuleType:
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ValueError(f"problem {spec!r}: no such file {path}")
    # A module name of its own per path: two files called problem.py do not replace each other,
    # and the module sits in sys.modules while it runs (dataclasses and pickling look it up there).
    name = "pinnopt_user_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"problem {spec!r}: {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    # Like `python FILE`, the file's own folder is importable while it runs (helpers beside it).
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise ValueError(f"problem {spec!r}: running {path} failed: {type(err).__name__}: {err}") from err
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    return module


def _load_module(spec: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as err:
        raise ValueError(f"problem {spec!r}: importing module {module_name!r} failed: "
                         f"{type(err).__name__}: {err}") from err


def load_factory(spec: str) -> Callable:
    """The callable ``NAME`` of the file or module a ``TARGET:NAME`` spec names.

    ``ValueError`` (naming the spec) when the spec is malformed, the file does not exist, the
    module fails to import or run, it has no ``NAME``, or ``NAME`` is not callable.
    """
    if not is_spec(spec):
        raise ValueError(f"problem {spec!r}: expected FILE.py:NAME or package.module:NAME")
    target, attr = _split(spec)
    module = _load_file(spec, target) if _is_file(target) else _load_module(spec, target)
    if not hasattr(module, attr):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                        and getattr(v, "__module__", None) == module.__name__)
        raise ValueError(f"problem {spec!r}: {target} has no attribute {attr!r}"
                         + (f" (callables there: {', '.join(public)})" if public else ""))
    factory = getattr(module, attr)
    if not callable(factory):
        raise ValueError(f"problem {spec!r}: {attr!r} is a {type(factory).__name__}, not a callable factory")
    return factory


__all__ = ["is_spec", "load_factory", "resolve_spec", "spec_label"]
