"""Tracebacks that point at the user's code, not at the library's insides.

An exception that leaves a public entry point (a transform, an ``fnp`` function) has its
traceback rewritten: every frame whose code lives in the ``functorch_lite`` package is
dropped and every other frame is kept, so the user sees the line of *their* code that went
wrong (including lines of their own function called back from inside ``grad``). A note
says frames were hidden. ``FL_SHOW_INTERNAL_FRAMES=1`` in the environment turns the
filtering off; it is read when an exception happens, so it can be set at any time.

Two ways to make a function a boundary:

* ``@api_boundary``. For a plain function the wrapper has exactly the function's
  parameters, so it costs one extra Python call (~15 ns; a generic ``*args, **kwargs``
  wrapper costs ~140 ns).
* In a function on the eager hot path, a ``try``/``except`` around the body, which costs
  nothing until an exception is raised (try blocks are free since Python 3.11)::

      try:
          ...
      except Exception as e:
          hide_internal_frames(e)
          raise          # a bare raise re-raises without adding this frame back

Boundaries nest (an ``fnp`` call in a user function inside ``grad``): each hides only the
frames the exception crossed since the boundary below it, and the note is added once.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import os
import types

__all__ = ["api_boundary", "hide_internal_frames", "NOTE"]

NOTE = "(functorch_lite internal frames hidden; set FL_SHOW_INTERNAL_FRAMES=1 to see them)"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# Attribute set on an exception: the head of the traceback a boundary built for it. From
# that entry on the traceback is already filtered, so an enclosing boundary stops there.
_FILTERED_HEAD = "_functorch_lite_filtered_tb"
_NOT_FILTERED = object()

# Attribute set on a wrapper made by ``api_boundary``: wrapping it again is a no-op.
_IS_BOUNDARY = "_functorch_lite_api_boundary"


# --------------------------------------------------------------------------------------
# Filtering
# --------------------------------------------------------------------------------------
def _show_internal_frames():
    return os.environ.get("FL_SHOW_INTERNAL_FRAMES", "") not in ("", "0")


def _is_internal(frame):
    return frame.f_code.co_filename.startswith(_PACKAGE_DIR)


def _filter(tb, stop):
    """``(new_tb, hidden)``: ``tb`` without internal frames, ``hidden`` if any was dropped.

    The entries from ``stop`` on (a traceback a boundary already filtered) are reused.
    """
    kept = []
    hidden = False
    while tb is not None and tb is not stop:
        if _is_internal(tb.tb_frame):
            hidden = True
        else:
            kept.append(tb)
        tb = tb.tb_next
    new_tb = tb
    for entry in reversed(kept):
        new_tb = types.TracebackType(new_tb, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return new_tb, hidden


def _filter_chain(exc, seen):
    """Filter the tracebacks of ``exc`` and of its causes and contexts, in place."""
    hidden = False
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        stop = getattr(exc, _FILTERED_HEAD, _NOT_FILTERED)
        if tb is not stop:
            tb, exc_hidden = _filter(tb, stop)
            exc.__traceback__ = tb
            setattr(exc, _FILTERED_HEAD, tb)
            hidden = hidden or exc_hidden
        if exc.__cause__ is not None:
            hidden = _filter_chain(exc.__cause__, seen) or hidden
        exc = None if exc.__suppress_context__ else exc.__context__
    return hidden


def hide_internal_frames(exc: BaseException) -> BaseException:
    """Drop ``functorch_lite`` frames from ``exc``'s traceback (and its causes'), in place.

    Call it in an ``except`` clause, then re-raise with a bare ``raise``. Adds
    :data:`NOTE` (once) when frames were hidden. Does nothing when the environment has
    ``FL_SHOW_INTERNAL_FRAMES=1``.

    Returns:
        ``exc``.
    """
    if _show_internal_frames():
        return exc
    if _filter_chain(exc, set()) and NOTE not in getattr(exc, "__notes__", ()):
        add_note = getattr(exc, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(NOTE)
    return exc


# --------------------------------------------------------------------------------------
# The decorator
# --------------------------------------------------------------------------------------
def api_boundary(fn):
    """Decorator for a public entry point: exceptions leave it with internal frames hidden.

    Decorating a boundary again returns it unchanged. ``functools.wraps`` metadata
    (name, docstring, ``__wrapped__``, so ``inspect.signature``) is kept.

    Example:
        >>> import traceback
        >>> from functorch_lite._traceback import api_boundary
        >>> @api_boundary
        ... def ratio(a, b=1):
        ...     return a / b
        >>> try:
        ...     ratio(1, b=0)
        ... except ZeroDivisionError as e:
        ...     print([frame.name for frame in traceback.extract_tb(e.__traceback__)])
        ['<module>', 'ratio']
    """
    if getattr(fn, _IS_BOUNDARY, False):
        return fn
    if isinstance(fn, types.FunctionType):
        wrapper = _wrapper_factory(fn.__code__)(fn, hide_internal_frames)
        wrapper.__defaults__ = fn.__defaults__
        wrapper.__kwdefaults__ = fn.__kwdefaults__
    else:  # a builtin, a class, a callable object: forward whatever comes
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                hide_internal_frames(e)
                raise
    wrapper = functools.wraps(fn)(wrapper)
    setattr(wrapper, _IS_BOUNDARY, True)
    return wrapper


# A wrapper with ``fn``'s own parameter list avoids packing ``*args, **kwargs`` on every
# call. One factory is compiled per distinct parameter list (all unary fnp functions share
# one). Its file name lies inside the package, so the wrapper's own frame is hidden too;
# its source goes to ``linecache`` so that FL_SHOW_INTERNAL_FRAMES=1 tracebacks show it.
_WRAPPER_TEMPLATE = """\
def make(__fl_fn, __fl_hide):
    def api_boundary_wrapper({params}):
        try:
            return __fl_fn({call})
        except Exception as __fl_exc:
            __fl_hide(__fl_exc)
            raise
    return api_boundary_wrapper
"""
_factories: dict = {}


def _wrapper_factory(code):
    params, call = _parameter_lists(code)
    factory = _factories.get(params)
    if factory is None:
        source = _WRAPPER_TEMPLATE.format(params=params, call=call)
        filename = f"{_PACKAGE_DIR}<api_boundary({params})>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {}
        exec(compile(source, filename, "exec"), namespace)
        factory = _factories[params] = namespace["make"]
    return factory


def _parameter_lists(code):
    """Source text of ``code``'s parameter list and of a call forwarding every parameter.

    ``def f(x, /, y, *rest, k, **kw)`` gives ``("x, /, y, *rest, k, **kw",
    "x, y, *rest, k=k, **kw")``; defaults are copied onto the wrapper separately.
    """
    names = code.co_varnames
    n_pos, n_kwonly = code.co_argcount, code.co_kwonlyargcount
    positional, kwonly = names[:n_pos], names[n_pos:n_pos + n_kwonly]
    rest = iter(names[n_pos + n_kwonly:])
    varargs = next(rest) if code.co_flags & inspect.CO_VARARGS else None
    varkw = next(rest) if code.co_flags & inspect.CO_VARKEYWORDS else None

    n_posonly = code.co_posonlyargcount
    params = list(positional[:n_posonly]) + (["/"] if n_posonly else [])
    params += positional[n_posonly:]
    call = list(positional)
    if varargs:
        params.append("*" + varargs)
        call.append("*" + varargs)
    elif kwonly:
        params.append("*")
    params += kwonly
    call += [f"{k}={k}" for k in kwonly]
    if varkw:
        params.append("**" + varkw)
        call.append("**" + varkw)
    return ", ".join(params), ", ".join(call)
