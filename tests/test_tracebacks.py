"""Exceptions leave the library with its internal frames hidden (functorch_lite._traceback).

"Library code" in these tests is code compiled with a file name inside the functorch_lite
package, so the tests exercise the filtering without depending on which public functions
are decorated.
"""

import doctest
import inspect
import os
import sys
import traceback
import types

import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import _traceback
from functorch_lite._traceback import NOTE, api_boundary, hide_internal_frames

PACKAGE_DIR = os.path.dirname(os.path.abspath(fl.__file__))
THIS_FILE = os.path.abspath(__file__)

# A miniature library: a public entry point calling helpers that call back into user code.
LIBRARY_SOURCE = """
def _helper(f, x):
    return f(x)

def _deeper(f, x):
    return _helper(f, x)

def apply(f, x):
    return _deeper(f, x)

def apply_twice(f, x):
    return apply(lambda v: apply(f, v), x)

def fail(x):
    raise ValueError("bad input from the library")

def fail_with_cause(x):
    try:
        return {}[x]
    except KeyError as e:
        raise TypeError("library rejects the key") from e

def apply_in_body(f, x):
    try:
        return _helper(f, x)
    except Exception as e:
        hide_internal_frames(e)
        raise
"""


@pytest.fixture
def lib(monkeypatch):
    """The miniature library, its entry points decorated with ``api_boundary``."""
    monkeypatch.delenv("FL_SHOW_INTERNAL_FRAMES", raising=False)
    filename = os.path.join(PACKAGE_DIR, "_fake_library_for_tests.py")
    module = types.ModuleType("fake_library")
    module.hide_internal_frames = hide_internal_frames
    exec(compile(LIBRARY_SOURCE, filename, "exec"), module.__dict__)
    for name in ("apply", "apply_twice", "fail", "fail_with_cause"):
        setattr(module, name, api_boundary(getattr(module, name)))
    return module


def frames(exc):
    return traceback.extract_tb(exc.__traceback__)


def internal(summary):
    return [f for f in summary if os.path.abspath(f.filename).startswith(PACKAGE_DIR)]


def shape_mistake(x):
    return fnp.sum(x + fnp.ones(4))  # the user's mistake: (3,) + (4,)


# --------------------------------------------------------------------------------------
# The real library: a shape mistake inside grad
# --------------------------------------------------------------------------------------
def test_shape_mistake_inside_grad_points_at_the_user_line(monkeypatch):
    monkeypatch.delenv("FL_SHOW_INTERNAL_FRAMES", raising=False)
    grad_fn = api_boundary(fl.grad(shape_mistake))
    with pytest.raises(ValueError) as info:
        grad_fn(fnp.ones(3))
    summary = frames(info.value)
    assert internal(summary) == []
    assert [f.name for f in summary] == [
        "test_shape_mistake_inside_grad_points_at_the_user_line", "shape_mistake"]
    assert all(f.filename == THIS_FILE for f in summary)
    assert summary[-1].line == "return fnp.sum(x + fnp.ones(4))  # the user's mistake: (3,) + (4,)"
    assert info.value.__notes__.count(NOTE) == 1


def test_a_bad_cotangent_to_a_pullback_shows_only_the_call_site(monkeypatch):
    monkeypatch.delenv("FL_SHOW_INTERNAL_FRAMES", raising=False)
    _, pullback = fl.vjp(fnp.sin, fnp.ones(3))
    with pytest.raises(ValueError, match=r"cotangent shape \(4,\) does not match") as info:
        pullback(fnp.ones(4))
    summary = frames(info.value)
    assert internal(summary) == []
    assert [f.name for f in summary] == [
        "test_a_bad_cotangent_to_a_pullback_shows_only_the_call_site"]
    assert info.value.__notes__.count(NOTE) == 1


def test_internal_frames_shown_when_the_environment_says_so(monkeypatch):
    monkeypatch.setenv("FL_SHOW_INTERNAL_FRAMES", "1")
    grad_fn = api_boundary(fl.grad(shape_mistake))
    with pytest.raises(ValueError) as info:
        grad_fn(fnp.ones(3))
    summary = frames(info.value)
    names = [f.name for f in summary]
    assert "shape_mistake" in names
    assert {"grad_f", "process"} <= set(names)  # the transform's and the trace's frames
    assert len(internal(summary)) >= 4
    assert NOTE not in getattr(info.value, "__notes__", [])


def test_zero_in_the_environment_keeps_filtering(monkeypatch, lib):
    monkeypatch.setenv("FL_SHOW_INTERNAL_FRAMES", "0")
    with pytest.raises(ValueError) as info:
        lib.apply(shape_mistake, fnp.ones(3))
    assert internal(frames(info.value)) == []


# --------------------------------------------------------------------------------------
# The decorator on a miniature library
# --------------------------------------------------------------------------------------
def test_user_frames_kept_internal_frames_dropped(lib):
    def user_fn(x):
        return x["missing"]  # TypeError raised in user code, called back by the library

    with pytest.raises(TypeError) as info:
        lib.apply(user_fn, 3)
    summary = frames(info.value)
    assert internal(summary) == []
    assert [f.name for f in summary] == ["test_user_frames_kept_internal_frames_dropped",
                                         "user_fn"]
    assert info.value.__notes__ == [NOTE]


def test_error_raised_by_the_library_shows_only_the_call_site(lib):
    with pytest.raises(ValueError, match="bad input") as info:
        lib.fail(1)
    summary = frames(info.value)
    assert [(f.name, f.line) for f in summary] == [
        ("test_error_raised_by_the_library_shows_only_the_call_site", "lib.fail(1)")]


def test_nested_boundaries_filter_once_and_note_once(lib):
    def user_fn(x):
        return lib.fail(x)  # a boundary in a user function in a boundary

    with pytest.raises(ValueError) as info:
        lib.apply_twice(user_fn, 2)
    summary = frames(info.value)
    assert [f.name for f in summary] == ["test_nested_boundaries_filter_once_and_note_once",
                                         "user_fn"]
    assert summary[-1].line == "return lib.fail(x)  # a boundary in a user function in a boundary"
    assert info.value.__notes__ == [NOTE]


def test_without_filtering_every_frame_is_kept(monkeypatch, lib):
    def user_fn(x):
        raise RuntimeError("user")

    monkeypatch.setenv("FL_SHOW_INTERNAL_FRAMES", "1")
    with pytest.raises(RuntimeError) as info:
        lib.apply(user_fn, 0)
    names = [f.name for f in frames(info.value)]
    assert names[-4:] == ["apply", "_deeper", "_helper", "user_fn"]
    assert "api_boundary_wrapper" in names  # the wrapper's frame is shown, with its source
    wrapper = next(f for f in frames(info.value) if f.name == "api_boundary_wrapper")
    assert wrapper.line.startswith("return __fl_fn(")


def test_cause_traceback_is_filtered_too(lib):
    with pytest.raises(TypeError) as info:
        lib.fail_with_cause("k")
    cause = info.value.__cause__
    assert isinstance(cause, KeyError)
    assert internal(frames(cause)) == []
    assert [f.name for f in frames(info.value)] == ["test_cause_traceback_is_filtered_too"]


def test_in_body_boundary_hides_its_own_frame(lib):
    def user_fn(x):
        return 1 / x

    with pytest.raises(ZeroDivisionError) as info:
        lib.apply_in_body(user_fn, 0)
    assert [f.name for f in frames(info.value)] == ["test_in_body_boundary_hides_its_own_frame",
                                                    "user_fn"]
    assert info.value.__notes__ == [NOTE]


def test_an_exception_raised_again_is_filtered_again(lib):
    def user_fn(x):
        return 1 / x

    with pytest.raises(ZeroDivisionError) as first:
        lib.apply(user_fn, 0)
    stored = first.value

    def raise_stored(x):
        raise stored  # re-raised through the library: its new internal frames go too

    with pytest.raises(ZeroDivisionError) as second:
        lib.apply(raise_stored, 0)
    summary = frames(second.value)
    assert internal(summary) == []
    assert [f.name for f in summary][:2] == ["test_an_exception_raised_again_is_filtered_again",
                                             "raise_stored"]
    assert summary[-1].name == "user_fn"
    assert second.value.__notes__ == [NOTE]


def test_exceptions_that_are_not_errors_pass_untouched(lib):
    def user_fn(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        lib.apply(user_fn, 0)
    assert len(internal(frames(info.value))) >= 3
    assert not hasattr(info.value, "__notes__")


# --------------------------------------------------------------------------------------
# The wrapper itself
# --------------------------------------------------------------------------------------
def test_wrapper_forwards_every_kind_of_parameter():
    def f(x, /, y, z=3, *rest, k, m=5, **kw):
        return x, y, z, rest, k, m, kw

    g = api_boundary(f)
    assert g(1, 2, k=4) == (1, 2, 3, (), 4, 5, {})
    assert g(1, y=2, z=9, k=4, m=6, extra=7) == (1, 2, 9, (), 4, 6, {"extra": 7})
    assert g(1, 2, 3, 10, 11, k=4) == (1, 2, 3, (10, 11), 4, 5, {})
    with pytest.raises(TypeError):
        g(x=1, y=2, k=4)  # x is positional-only, as in f
    assert inspect.signature(g) == inspect.signature(f)


def test_wrapper_keeps_metadata_and_is_idempotent():
    def f(a):
        """Doubles."""
        return a * 2

    g = api_boundary(f)
    assert (g.__name__, g.__doc__, g.__wrapped__) == ("f", "Doubles.", f)
    assert api_boundary(g) is g


DOCTEST_MODULE_SOURCE = """
from functorch_lite._traceback import api_boundary

@api_boundary
def documented(a):
    \"\"\"Doubles.

    >>> documented(2)
    4
    \"\"\"
    return a * 2
"""


def test_doctest_still_finds_examples_of_decorated_functions(monkeypatch):
    module = types.ModuleType("fl_doctest_probe")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(DOCTEST_MODULE_SOURCE, "fl_doctest_probe.py", "exec"), module.__dict__)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert [t.name for t in tests] == ["fl_doctest_probe.documented"]
    assert doctest.DocTestRunner().run(tests[0]).failed == 0


def test_wrapper_of_a_callable_object():
    class Scale:
        def __call__(self, x):
            return 2 * x

    g = api_boundary(Scale())
    assert g(4) == 8
    with pytest.raises(TypeError) as info:
        g(None)
    assert internal(frames(info.value)) == []


def test_wrappers_with_the_same_parameters_share_one_compiled_factory():
    def f1(x, /):
        return x

    def f2(y, /):
        return y

    def f3(x, /):
        return -x

    api_boundary(f1), api_boundary(f2), api_boundary(f3)
    assert "x, /" in _traceback._factories and "y, /" in _traceback._factories
    assert api_boundary(f3)(2) == -2
