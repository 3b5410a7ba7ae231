"""Which model families exist: every module of this package that defines a family
``Config`` (``family: Literal["<name>"]``), found at import, plus any ``register``-ed.

Nothing here imports Keras: ``seqclf.config`` builds its ``model`` section from
``families()``; ``load_layers()`` imports the registered Keras layers when a model is
about to be built or loaded.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any, Callable, get_args

import seqclf.models as _package

DEFAULT = "recurrent"
_FAMILIES: dict[str, ModuleType] = {}
_LISTENERS: list[Callable[[], None]] = []


def family_name(module: ModuleType) -> str | None:
    """The family a module defines, or None when it is not a family module."""
    config = getattr(module, "Config", None)
    field = getattr(config, "model_fields", {}).get("family")
    names = get_args(field.annotation) if field is not None else ()
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None


def register(module: ModuleType) -> str:
    """Add a family module (one outside this package, e.g. a test's) and rebuild the
    config schema. Returns the family's name."""
    name = family_name(module)
    if name is None or not callable(getattr(module, "features", None)):
        raise TypeError(f"{module.__name__} is not a family module (needs Config with "
                        "family: Literal['<name>'] and features())")
    _FAMILIES[name] = module
    for listener in _LISTENERS:
        listener()
    return name


def unregister(name: str) -> None:
    """Remove a ``register``-ed family (tests clean up with it)."""
    del _FAMILIES[name]
    for listener in _LISTENERS:
        listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a family is registered or removed."""
    _LISTENERS.append(listener)


def families() -> dict[str, ModuleType]:
    """Family name -> module, the default family first, then by name."""
    return dict(sorted(_FAMILIES.items(), key=lambda item: (item[0] != DEFAULT, item[0])))


def get(name: str) -> ModuleType:
    """The module of a registered family."""
    return _FAMILIES[name]


def hook(name: str, hook_name: str) -> Any:
    """A family's optional hook (``fit``, ``predict_proba``, ``combine``, ``cudnn_reasons``,
    ``describe``) or None."""
    return getattr(_FAMILIES[name], hook_name, None)


def load_layers() -> None:
    """Import every module of registered Keras layers (``layers`` and ``*_layers``), so
    that a saved model's custom layers resolve. Imports Keras."""
    for info in pkgutil.iter_modules(_package.__path__):
        if _holds_layers(info.name):
            importlib.import_module(f"{_package.__name__}.{info.name}")


def _holds_layers(module: str) -> bool:
    """Whether a module of this package holds registered Keras layers (imports Keras)."""
    return module == "layers" or module.endswith("_layers")


def _discover() -> None:
    for info in pkgutil.iter_modules(_package.__path__):
        if _holds_layers(info.name) or info.name == "registry":
            continue  # Keras modules, and this one
        module = importlib.import_module(f"{_package.__name__}.{info.name}")
        name = family_name(module)
        if name is not None:
            _FAMILIES[name] = module


_discover()
