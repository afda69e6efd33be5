"""The model registry: built-in models, models registered at run time, plugins, and user files.

* ``register_model(model)`` adds a model (an instance of :class:`~dopa_rl.models.base.Model`, e.g. from
  :func:`~dopa_rl.models.family.choice_model`) under its ``name``;
* ``get_model(name, **options)`` returns it: each registered model is built once and shared (models hold
  structure only); options (``q0``, ``n_options``, TD ``representation`` ...) give a modified copy;
* ``list_models()`` lists every model, in a stable order: built-ins, then plugins, then registered ones.

Plugins are found through the entry-point group ``dopa_rl.models``: an entry point ``NAME = pkg.mod:OBJ``
names a model (or a zero-argument function returning one); it is imported only when ``NAME`` is asked for
or the list is wanted.  A user's own model is named as ``path/to/file.py:NAME`` or ``package.module:NAME``
(``NAME`` an attribute of the file or module that is a model or a function returning one, or a name the
file registered); the file is loaded only when named, once per process.

Building the registry imports neither numba nor pandas and compiles nothing: kernels load on first use.
"""
from __future__ import annotations

import re
import warnings

from dopa_rl.errors import InputError
from dopa_rl.models.base import Model

__all__ = ["ENTRY_POINT_GROUP", "register_model", "unregister_model", "model_names", "list_models", "get_model",
           "load_model_spec", "forget_plugins"]

ENTRY_POINT_GROUP = "dopa_rl.models"

_builtin: dict[str, Model] | None = None       # built once, on first need
_registered: dict[str, Model] = {}             # register_model
_plugins: dict[str, object] | None = None      # entry-point name -> EntryPoint (not loaded) or loaded Model


def _builtins() -> dict[str, Model]:
    global _builtin
    if _builtin is None:
        from dopa_rl.models.rw import choice_models, pavlovian_models
        from dopa_rl.models.belief import belief_models
        from dopa_rl.models.td import td_models

        _builtin = {**choice_models(), **pavlovian_models(), **td_models(), **belief_models()}
    return _builtin


def _plugin_points() -> dict[str, object]:
    global _plugins
    if _plugins is None:
        from importlib.metadata import entry_points

        _plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _plugins


def _as_model(obj, where: str) -> Model:
    """``obj`` itself if it is a model, else what it returns when called with no arguments."""
    if not isinstance(obj, Model) and callable(obj) and not isinstance(obj, type):
        obj = obj()
    if not isinstance(obj, Model):
        raise InputError(f"{where} is a {type(obj).__name__}, not a model; build one with "
                         f"dopa_rl.models.choice_model(...) or subclass dopa_rl.models.Model")
    return obj


def _load_plugin(name: str) -> Model:
    point = _plugin_points()[name]
    if not isinstance(point, Model):
        try:
            obj = point.load()
        except Exception as exc:  # a broken plugin: say which one, in one line
            raise InputError(f"model plugin {name} ({point.value}) failed to load: {type(exc).__name__}: {exc}") from exc
        model = _as_model(obj, f"model plugin {name} ({point.value})")
        if model.name != name:
            raise InputError(f"model plugin {name} ({point.value}) builds a model named {model.name!r}; "
                             f"the entry point and the model must have the same name")
        _plugins[name] = model
    return _plugins[name]


def register_model(model: Model, *, replace: bool = False) -> Model:
    """Register ``model`` under ``model.name``.

    Parameters
    ----------
    model : Model
        The model to name in :func:`get_model`.
    replace : bool, default False
        Replace a model registered (or a plugin) under that name; built-in names can never be replaced.

    Returns
    -------
    Model
        ``model`` itself, so ``M = register_model(choice_model(...))`` works.

    Raises
    ------
    InputError
        The name is taken and ``replace`` is False, or it is a built-in name.
    """
    if not isinstance(model, Model):
        raise InputError(f"register_model takes a model (dopa_rl.models.Model), got {type(model).__name__}")
    name = model.name
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise InputError(f"model name {name!r}: use letters, digits and - _ . + (no spaces or ':')")
    if name in _builtins():
        raise InputError(f"model name {name!r} is a built-in model; choose another name")
    if not replace and (name in _registered or name in _plugin_points()):
        if _registered.get(name) is model:
            return model
        raise InputError(f"model {name!r} is already registered; choose another name or pass replace=True")
    _registered[name] = model
    return model


def unregister_model(name: str) -> None:
    """Remove a model added by :func:`register_model` (for tests and notebooks).

    Parameters
    ----------
    name : str
        Its name; a name not registered is ignored.
    """
    _registered.pop(name, None)


def model_names() -> list[str]:
    """Every model name, without loading any plugin.

    Returns
    -------
    list of str
        Built-in, plugin and registered names.
    """
    return list(dict.fromkeys([*_builtins(), *_plugin_points(), *_registered]))


def list_models() -> list[Model]:
    """Every model, in a stable order.

    Returns
    -------
    list of Model
        The built-in models, then plugins (loaded; one that fails to load is skipped with a warning), then
        those added by :func:`register_model`.
    """
    out = list(_builtins().values())
    for name in _plugin_points():
        if name in _registered:
            continue
        try:
            out.append(_load_plugin(name))
        except InputError as exc:
            warnings.warn(str(exc), stacklevel=2)
    out.extend(_registered.values())
    return out


def get_model(name: str | Model, **options) -> Model:
    """The model registered as ``name``, or a user's model named ``file.py:NAME`` / ``package.module:NAME``.

    Parameters
    ----------
    name : str or Model
        A registered name (:func:`model_names`), ``FILE.py:NAME``, ``package.module:NAME``, or a model.
    **options
        Model options: ``q0`` (initial value) and ``n_options`` for choice models; ``representation`` and
        ``timing`` for TD models (see each model's ``option_names``).

    Returns
    -------
    Model
        The model, built with ``options`` when given.

    Raises
    ------
    InputError
        An unknown name (the message lists the known ones).
    """
    if isinstance(name, Model):
        model = name
    elif ":" in str(name):
        model = load_model_spec(str(name))
    elif name in _builtins():
        model = _builtins()[name]
    elif name in _registered:
        model = _registered[name]
    elif name in _plugin_points():
        model = _load_plugin(name)
    else:
        raise InputError(f"unknown model {name!r}; choose one of: {', '.join(model_names())} "
                         f"(or name your own as FILE.py:NAME or package.module:NAME)")
    return model.with_options(**options) if options else model


#: short model names for a task: (task kind, short name) -> registered model (``simulate --model rw``)
SHORT_NAMES = {("pavlovian", "rw"): "rw-pavlovian", ("bandit", "rw"): "rw-softmax", ("pavlovian", "td"): "td"}


def model_for_task(task: str, name: str) -> str:
    """The registered name of ``name`` for a ``task`` kind (``pavlovian`` or ``bandit``): a short name
    (``rw``, ``td``) resolved by :data:`SHORT_NAMES`, any other name as it is."""
    return SHORT_NAMES.get((task, name), name)


def response_model_names() -> list[str]:
    """Models that fit dopamine responses with a learner interface of their own (ANCCR), not :class:`Model`'s."""
    from dopa_rl.models.anccr import ANCCRResponses

    return [ANCCRResponses.name]


def get_response_model(name: str, **options):
    """A model whose responses a dopamine comparison fits: any :func:`get_model` model, or a response model
    (``anccr``: :class:`~dopa_rl.models.anccr.ANCCRResponses`, options ``grid``)."""
    from dopa_rl.models.anccr import ANCCRResponses

    if name == ANCCRResponses.name:
        from dopa_rl.models.base import check_options

        check_options(name, options, {"grid"})
        return ANCCRResponses(**options)
    try:
        return get_model(name, **options)
    except InputError as exc:
        raise InputError(f"{exc} (for dopamine comparisons also: {', '.join(response_model_names())})") from None


def load_model_spec(spec: str) -> Model:
    """The model ``NAME`` of ``path/to/file.py:NAME`` or ``package.module:NAME`` (loaded once per process, by
    the one loader of user code, :mod:`dopa_rl.models.user_code`)."""
    from dopa_rl.models.user_code import load_user_module, split_spec

    try:
        where, attr = split_spec(spec)
        module = load_user_module(where)
    except InputError as exc:
        raise InputError(f"model {spec!r}: {exc}") from exc.__cause__
    if hasattr(module, attr):
        return _as_model(getattr(module, attr), f"model {spec!r}: {attr}")
    if attr in _registered:  # the file registered a model under that name
        return _registered[attr]
    found = sorted(k for k, v in vars(module).items() if isinstance(v, Model) and not k.startswith("_"))
    hint = f"; it defines: {', '.join(found)}" if found else "; it defines no model"
    raise InputError(f"model {spec!r}: {where} has no model {attr!r}{hint}")


def forget_plugins() -> None:
    """Look for entry-point plugins again on next use (after installing one in a running process; tests)."""
    global _plugins
    _plugins = None
