"""fl.save / fl.load: round trips (npz and safetensors), like= restoring node types and
checking structure/shape/dtype, atomic writes, and error messages."""

import collections
import importlib.util
import os
from typing import NamedTuple

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import optim

FORMATS = [".npz", pytest.param(".safetensors", marks=pytest.mark.skipif(
    importlib.util.find_spec("safetensors") is None, reason="safetensors not installed"))]


class Pair(NamedTuple):
    first: object
    second: object


def nested_tree():
    rng = np.random.default_rng(0)
    return {
        "f16": rng.normal(size=(2, 3)).astype(np.float16),
        "f32": fnp.asarray(rng.normal(size=(4,)).astype(np.float32)),
        "f64": rng.normal(size=()).astype(np.float64),
        "layers": [{"w": rng.integers(-5, 5, size=(3, 2)).astype(np.int32),
                    "mask": np.array([True, False, True])},
                   (np.arange(5, dtype=np.int64), None, np.zeros((2, 0), np.float32))],
        "scalars": {"lr": 0.5, "step": 3, "flag": True, "name": "adam"},
        "by_int": {7: np.uint8([1, 2]), 2: np.ones(2, np.float32)},
    }


def assert_same_tree(got, want):
    got_leaves, got_def = fl.tree.flatten(got)
    want_leaves, want_def = fl.tree.flatten(want)
    assert got_def == want_def
    for g, w in zip(got_leaves, want_leaves):
        if isinstance(w, (bool, int, float, str)):
            assert type(g) is type(w) and g == w
        else:
            assert isinstance(g, fl.Array)
            assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


@pytest.mark.parametrize("suffix", FORMATS)
def test_roundtrip_nested_dtypes(tmp_path, suffix):
    path = tmp_path / f"tree{suffix}"
    tree = nested_tree()
    fl.save(path, tree)
    assert_same_tree(fl.load(path), tree)
    assert os.listdir(tmp_path) == [path.name]   # no temporary file left behind


@pytest.mark.parametrize("suffix", FORMATS)
def test_like_restores_namedtuples_and_optimizer_state(tmp_path, suffix):
    path = tmp_path / f"opt{suffix}"
    params = {"w": fnp.ones((2, 2)), "b": fnp.zeros(2)}
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-2))
    state = opt.init(params)
    grads = fl.tree.map(lambda p: p + 1.0, params)
    _, state = opt.update(grads, state, params)
    fl.save(path, {"pair": Pair(fnp.ones(3), [2.0]), "opt": state})

    plain = fl.load(path)   # without like: namedtuples rebuilt from name and fields
    assert type(plain["pair"]).__name__ == "Pair" and plain["pair"]._fields == Pair._fields
    like = {"pair": Pair(fnp.zeros(3), [0.0]), "opt": opt.init(params)}
    restored = fl.load(path, like=like)
    assert type(restored["pair"]) is Pair
    assert fl.tree.structure(restored["opt"]) == fl.tree.structure(state)
    assert_same_tree(restored["opt"], state)


def test_like_restores_registered_nodes(tmp_path):
    class Box:
        def __init__(self, items):
            self.items = items

    fl.tree.register_node(Box, lambda b: (b.items, None), lambda _, items: Box(list(items)))
    path = tmp_path / "box.npz"
    fl.save(path, {"box": Box([fnp.ones(2), fnp.arange(3)])})
    with pytest.raises(ValueError, match=r"registered pytree node.*like="):
        fl.load(path)
    restored = fl.load(path, like={"box": Box([fnp.zeros(2), fnp.arange(3) * 0])})
    assert isinstance(restored["box"], Box)
    np.testing.assert_array_equal(restored["box"].items[1], np.arange(3))


def test_ordereddict_keeps_its_order(tmp_path):
    path = tmp_path / "od.npz"
    tree = collections.OrderedDict([("z", fnp.ones(1)), ("a", fnp.zeros(1))])
    fl.save(path, tree)
    loaded = fl.load(path)
    assert isinstance(loaded, collections.OrderedDict) and list(loaded) == ["z", "a"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_like_mismatches_say_what_differs(tmp_path, suffix):
    path = tmp_path / f"p{suffix}"
    fl.save(path, {"w": fnp.ones((2, 3)), "b": fnp.zeros(3)})
    with pytest.raises(ValueError, match=r"\['w'\]: float32\[2, 3\] in the file, "
                                         r"float32\[3, 2\] in like"):
        fl.load(path, like={"w": fnp.ones((3, 2)), "b": fnp.zeros(3)})
    with pytest.raises(ValueError, match=r"\['b'\]: float32\[3\] in the file, float64\[3\]"):
        fl.load(path, like={"w": fnp.ones((2, 3)), "b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"2 leaves in the file, 3 in like.*missing from "
                                         r"the file: \['c'\]"):
        fl.load(path, like={"w": fnp.ones((2, 3)), "b": fnp.zeros(3), "c": fnp.zeros(1)})
    with pytest.raises(ValueError, match=r"missing from the file: \['v'\]; only in the "
                                         r"file: \['w'\]"):
        fl.load(path, like={"v": fnp.ones((2, 3)), "b": fnp.zeros(3)})


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"fl.load: no file at .*missing.npz"):
        fl.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match=r"fl.save: the leaf at \['b'\]\[0\] \(object, "
                                        r"dtype object\)"):
        fl.save(tmp_path / "x.npz", {"a": fnp.ones(2), "b": [object()]})
    with pytest.raises(TypeError, match=r"dtype <U"):
        fl.save(tmp_path / "x.npz", {"a": np.array(["text"])})
    with pytest.raises(TypeError, match=r"dict key \(1, 2\) .* only str and int keys"):
        fl.save(tmp_path / "x.npz", {(1, 2): fnp.ones(1)})
    assert os.listdir(tmp_path) == []


def test_plain_npz_loads_as_a_dict(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.arange(3), b=np.ones((2, 2), np.float32))
    loaded = fl.load(path)
    assert sorted(loaded) == ["a", "b"] and loaded["b"].shape == (2, 2)


class _Exploding:
    """A leaf whose conversion to an array fails."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("cannot serialize this leaf")


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    fl.save(path, {"w": fnp.ones(3)})
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"\['x'\] \(_Exploding\) cannot be converted"):
        fl.save(path, {"w": fnp.zeros(3), "x": _Exploding()})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_error_midway_through_writing_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    fl.save(path, {"w": fnp.ones(3)})
    before = path.read_bytes()

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 partial archive")   # some bytes reach the disk...
        raise OSError("disk full")                   # ...then the write fails

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        fl.save(path, {"w": fnp.zeros(3)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    fl.save(tmp_path / "new.npz", {"w": fnp.zeros(3)})   # a new path: not created on error
    with monkeypatch.context() as m:
        m.setattr(np, "savez", savez_then_fail)
        with pytest.raises(OSError):
            fl.save(tmp_path / "other.npz", {"w": fnp.zeros(3)})
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz", "new.npz"]


def test_safetensors_file_is_readable_by_safetensors(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "m.safetensors"
    fl.save(path, {"layers": [{"w": fnp.ones((2, 2))}], "b": fnp.zeros(2)})
    tensors = safetensors_numpy.load_file(str(path))
    assert sorted(tensors) == ["b", "layers.0.w"]


def test_safetensors_missing_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "safetensors", None)
    monkeypatch.setitem(__import__("sys").modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"fl.save: a .safetensors path needs the "
                                          r"safetensors package"):
        fl.save(tmp_path / "m.safetensors", {"w": fnp.ones(1)})
