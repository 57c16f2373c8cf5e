"""One registry for everything pinnopt finds by name: problems, optimizers, constraint methods, balancers.

A ``Registry`` maps names to factories ``(**options) -> object``. ``get(name, **options)``
checks the options against the factory's signature before calling it (an unknown option, or
a value whose type cannot be what the factory's default or annotation says, is a
``ValueError`` naming the option), and tags what it builds with a ``Spec`` (its kind, name
and options), so a run records how each part was made however it was made and a resumed run
can rebuild it::

    tx = pinnopt.optimizers.get("adam", learning_rate=1e-2)
    spec_of(tx)  # Spec(kind="optimizer", name="adam", options={"learning_rate": 0.01})

``register`` works as a call and as a decorator::

    @pinnopt.problems.register("my_pde")
    def make_my_pde(n: int = 256): ...
"""
from __future__ import annotations

import difflib
import inspect
import numbers
from typing import Any, Callable, NamedTuple, Optional

SPEC_ATTRIBUTE = "pinnopt_spec"


class Spec(NamedTuple):
    """How an object was built: ``registry(kind).get(name, **options)``."""

    kind: str
    name: str
    options: dict

    def to_config(self) -> dict:
        return {"name": self.name, "options": dict(self.options)}


def spec_of(obj: Any) -> Optional[Spec]:
    """The ``Spec`` an object was tagged with by ``Registry.get`` (None for an untagged object)."""
    return getattr(obj, SPEC_ATTRIBUTE, None)


_TAGGABLE: dict[type, type] = {}


def tag(obj: Any, spec: Spec) -> Any:
    """``obj`` carrying ``spec``. A NamedTuple (an optax transformation, a ``Balancer``) cannot take
    attributes, so it is re-made as an instance of a subclass that can: ``isinstance`` and tuple
    behaviour are unchanged."""
    for setter in (setattr, object.__setattr__):  # the second also tags a frozen dataclass
        try:
            setter(obj, SPEC_ATTRIBUTE, spec)
            return obj
        except (AttributeError, TypeError):
            pass
    cls = type(obj)
    if not (isinstance(obj, tuple) and hasattr(cls, "_fields")):
        return obj  # nothing sensible to attach to; the caller records the name alone
    if cls not in _TAGGABLE:
        _TAGGABLE[cls] = type(cls.__name__, (cls,), {"__module__": cls.__module__})
    new = _TAGGABLE[cls](*obj)
    object.__setattr__(new, SPEC_ATTRIBUTE, spec)
    return new


def _close(word: str, choices, n: int = 3) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=n, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


def _expected_type(param: inspect.Parameter) -> Optional[type]:
    """The plain scalar type a parameter's annotation or default asks for (None: anything goes)."""
    ann = param.annotation
    if isinstance(ann, str):  # postponed annotations: only the plain names are read
        ann = {"int": int, "float": float, "bool": bool, "str": str}.get(ann.strip(), None)
    if ann in _TYPE_NAMES:
        return ann
    if param.annotation is not inspect.Parameter.empty:  # Union, Optional, an alias: not checked here
        return None
    default = param.default
    if default is inspect.Parameter.empty or default is None:
        return None
    return type(default) if type(default) in _TYPE_NAMES else None


def _fits(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    return isinstance(value, expected)


def check_options(what: str, factory: Callable, options: dict) -> None:
    """Unknown options and options of a plainly wrong type are ``ValueError``s naming them.

    Only scalar types are checked (bool, int, float, str, taken from the annotation or the
    default): a factory that accepts ``**kwargs`` takes any name, and an option whose default
    is None or a container takes any value.
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: nothing to check against
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    for key, value in options.items():
        if key not in named:
            if takes_any:
                continue
            raise ValueError(f"{what} has no option {key!r}.{_close(key, named)} "
                             f"Accepted: {', '.join(named) or '(none)'}")
        expected = _expected_type(named[key])
        if (expected is not None and value is not None and not callable(value) and not hasattr(value, "shape")
                and not _fits(value, expected)):
            raise ValueError(f"{what}: option {key!r} expects {_TYPE_NAMES[expected]}, got {value!r}")


class Registry:
    """Named factories of one kind (``"problem"``, ``"optimizer"``, ...).

    ``aliases`` maps other names to registered ones (``"al"`` -> ``"augmented_lagrangian"``);
    ``fallback(name) -> factory | None`` finds names not registered here (optax's optimizers,
    installed plugins); ``extra_names() -> names`` lists what the fallback knows.
    """

    def __init__(self, kind: str, *, fallback: Optional[Callable[[str], Optional[Callable]]] = None,
                 extra_names: Optional[Callable[[], list]] = None):
        self.kind = kind
        self._factories: dict[str, Callable] = {}
        self._aliases: dict[str, str] = {}
        self._fallback = fallback
        self._extra_names = extra_names

    def register(self, name: str, factory: Optional[Callable] = None, *, aliases: tuple = ()):
        """Register ``factory`` under ``name`` (and ``aliases``); without ``factory``, a decorator."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")

        def add(fn: Callable) -> Callable:
            if not callable(fn):
                raise TypeError(f"{self.kind} {name!r}: the factory must be callable, got {type(fn).__name__}")
            self._factories[name] = fn
            for alias in aliases:
                self._aliases[alias] = name
            return fn

        return add if factory is None else add(factory)

    def available(self) -> list[str]:
        """Every name ``get`` accepts, aliases included."""
        extra = self._extra_names() if self._extra_names is not None else []
        return sorted(set(self._factories) | set(self._aliases) | set(extra))

    def canonical(self, name: str) -> str:
        return self._aliases.get(name, name)

    def factory(self, name: str) -> Callable:
        """The factory registered (or found by the fallback) under ``name``."""
        name = self.canonical(name)
        if name in self._factories:
            return self._factories[name]
        found = self._fallback(name) if self._fallback is not None else None
        if found is not None:
            return found
        raise ValueError(f"unknown {self.kind} {name!r}.{_close(name, self.available())} "
                         f"Available: {', '.join(self.available())}")

    def get(self, name: str, **options) -> Any:
        """``factory(name)(**options)``, checked and tagged with its ``Spec``."""
        factory = self.factory(name)
        check_options(f"{self.kind} {name!r}", factory, options)
        return tag(factory(**options), Spec(self.kind, name, dict(options)))

    def __contains__(self, name: str) -> bool:
        return name in self.available()
