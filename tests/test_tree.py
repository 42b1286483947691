"""Tests for functorch_lite.tree (pytrees), checked against JAX's documented semantics."""

import collections
import dataclasses
import operator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from functorch_lite import tree

Point = collections.namedtuple("Point", ["x", "y"])


@tree.register_dataclass
@dataclasses.dataclass
class Layer:
    weight: Any
    bias: Any
    name: str = dataclasses.field(default="dense", metadata={"static": True})


# ------------------------------------------------------------ generated trees

_leaf_values = st.one_of(
    st.integers(-100, 100),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text("xyz", max_size=2),
)
_dict_keys = st.text("abc", min_size=1, max_size=2)


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(_dict_keys, children, max_size=3),
        st.dictionaries(_dict_keys, children, max_size=3).map(collections.OrderedDict),
        st.builds(Point, children, children),
        st.builds(Layer, children, children, st.sampled_from(["dense", "conv"])),
    )


pytrees = st.recursive(st.one_of(_leaf_values, st.none()), _containers, max_leaves=12)


def _follow(subtree, path):
    """Walk a key path by hand, independently of the library's flattening."""
    for key in path:
        if isinstance(key, tree.DictKey):
            subtree = subtree[key.key]
        elif isinstance(key, tree.SequenceKey):
            subtree = subtree[key.idx]
        elif isinstance(key, tree.GetAttrKey):
            subtree = getattr(subtree, key.name)
        else:
            raise AssertionError(f"unexpected key {key!r}")
    return subtree


@given(pytrees)
def test_flatten_unflatten_round_trip(t):
    leaves, treedef = tree.flatten(t)
    rebuilt = tree.unflatten(treedef, leaves)
    assert rebuilt == t
    assert type(rebuilt) is type(t)
    assert treedef.num_leaves == len(leaves)
    assert tree.structure(rebuilt) == treedef
    assert hash(tree.structure(rebuilt)) == hash(treedef)
    assert tree.leaves(t) == leaves


@given(pytrees)
def test_paths_lead_to_leaves(t):
    pairs, treedef = tree.flatten_with_path(t)
    assert treedef == tree.structure(t)
    assert [leaf for _, leaf in pairs] == tree.leaves(t)
    paths = [path for path, _ in pairs]
    assert len(set(paths)) == len(paths)
    for path, leaf in pairs:
        assert _follow(t, path) is leaf


@given(pytrees)
def test_map_over_two_trees_matches_leafwise_zip(t):
    doubled = tree.map(lambda x: x * 2, t)
    assert tree.structure(doubled) == tree.structure(t)
    # SimpleNamespace is not a registered node, so each result stays one leaf.
    pairs = tree.map(lambda x, y: SimpleNamespace(x=x, y=y), t, doubled)
    expected = [SimpleNamespace(x=x, y=x * 2) for x in tree.leaves(t)]
    assert tree.leaves(pairs) == expected


# --------------------------------------------------------------- basic semantics


def test_dicts_flatten_in_sorted_key_order_and_rebuild_sorted():
    leaves, treedef = tree.flatten({"b": 1, "a": 2, "c": 3})
    assert leaves == [2, 1, 3]
    assert list(tree.unflatten(treedef, leaves)) == ["a", "b", "c"]
    assert tree.structure({"b": 0, "a": 0}) == tree.structure({"a": 0, "b": 0})


def test_none_is_a_node_without_leaves():
    assert tree.leaves(None) == []
    assert tree.leaves([None, 1, (None,)]) == [1]
    treedef = tree.structure(None)
    assert (treedef.num_leaves, treedef.num_nodes) == (0, 1)
    assert tree.map(lambda x: x + 1, [None, 1]) == [None, 2]


def test_leaves_are_anything_unregistered():
    class Opaque:
        pass

    obj = Opaque()
    values = [np.arange(3), 1.5, "text", obj, b"bytes"]
    assert tree.leaves(values) == values
    assert tree.structure(np.arange(3)).num_leaves == 1


def test_container_subclasses_are_leaves_but_namedtuples_are_nodes():
    class MyList(list):
        pass

    assert tree.leaves([MyList([1, 2])]) == [MyList([1, 2])]
    leaves, treedef = tree.flatten(Point(1, (2, 3)))
    assert leaves == [1, 2, 3]
    assert tree.unflatten(treedef, [4, 5, 6]) == Point(4, (5, 6))
    assert type(tree.unflatten(treedef, [4, 5, 6])) is Point


def test_ordered_dict_keeps_insertion_order():
    od = collections.OrderedDict([("b", 1), ("a", 2)])
    leaves, treedef = tree.flatten(od)
    assert leaves == [1, 2]
    rebuilt = tree.unflatten(treedef, [10, 20])
    assert type(rebuilt) is collections.OrderedDict
    assert list(rebuilt.items()) == [("b", 10), ("a", 20)]
    # Order is part of the structure, unlike for plain dicts.
    assert treedef != tree.structure(collections.OrderedDict([("a", 1), ("b", 2)]))


def test_defaultdict_keeps_default_factory():
    dd = collections.defaultdict(list, {"b": 1, "a": 2})
    leaves, treedef = tree.flatten(dd)
    assert leaves == [2, 1]
    rebuilt = tree.unflatten(treedef, [3, 4])
    assert type(rebuilt) is collections.defaultdict
    assert rebuilt.default_factory is list
    assert dict(rebuilt) == {"a": 3, "b": 4}
    assert treedef != tree.structure(collections.defaultdict(int, {"b": 1, "a": 2}))


def test_unsortable_dict_keys_raise_a_helpful_error():
    with pytest.raises(ValueError, match="cannot be sorted.*OrderedDict"):
        tree.flatten({1: "a", "b": 2})


def test_unflatten_checks_the_number_of_leaves():
    treedef = tree.structure([1, 2])
    with pytest.raises(ValueError, match="has 2 leaves but 3 were given"):
        tree.unflatten(treedef, [1, 2, 3])
    with pytest.raises(ValueError, match="has 2 leaves but 1 were given"):
        treedef.unflatten([1])
    with pytest.raises(TypeError, match=r"unflatten\(treedef, leaves\)"):
        tree.unflatten([1, 2], treedef)


# -------------------------------------------------------------------- map / rest


def test_map_with_several_trees():
    result = tree.map(
        lambda x, y, z: x + y + z,
        {"a": 1, "b": [2, 3]},
        {"a": 10, "b": [20, 30]},
        {"b": [200, 300], "a": 100},
    )
    assert result == {"a": 111, "b": [222, 333]}


def test_map_rest_trees_may_have_subtrees_where_the_first_has_leaves():
    result = tree.map(lambda x, sub: (x, sub), [1, 2], [{"a": 3}, (4, 5)])
    assert result == [(1, {"a": 3}), (2, (4, 5))]


def test_map_is_leaf_applies_to_the_first_tree():
    result = tree.map(
        lambda pair, y: pair[0] * y,
        [(1, 2), (3, 4)],
        [10, 100],
        is_leaf=lambda x: isinstance(x, tuple),
    )
    assert result == [10, 300]


def test_map_length_mismatch_names_the_path():
    with pytest.raises(ValueError) as info:
        tree.map(lambda x, y: x, {"a": [1, {"w": (1, 2)}]}, {"a": [1, {"w": (1, 2, 3)}]})
    message = str(info.value)
    assert message.startswith("map: rest[0]")
    assert "key path ['a'][1]['w']" in message
    assert "expected a tuple with 2 children, got one with 3" in message


def test_map_dict_key_mismatch_names_both_key_sets():
    with pytest.raises(ValueError) as info:
        tree.map(lambda x, y: x, {"p": {"a": 1, "b": 2}}, {"p": {"a": 1, "c": 2}})
    message = str(info.value)
    assert "key path ['p']" in message
    assert "keys ['a', 'b']" in message and "keys ['a', 'c']" in message


def test_map_type_mismatch_names_both_types():
    with pytest.raises(ValueError) as info:
        tree.map(lambda x, y: x, [(1, 2)], [[1, 2]], [(3, 4)])
    message = str(info.value)
    assert "rest[0]" in message and "key path [0]" in message
    assert "expected a tuple, got a list" in message

    with pytest.raises(ValueError, match=r"at the root: expected a dict, got a leaf of type int"):
        tree.map(lambda x, y: x, {"a": 1}, 5)


def test_map_none_must_match_none():
    assert tree.map(lambda x, y: x + y, [None, 1], [None, 2]) == [None, 3]
    with pytest.raises(ValueError, match=r"key path \[0\]: expected None, got a leaf of type int"):
        tree.map(lambda x, y: x, [None, 1], [5, 2])


def test_mismatch_paths_through_namedtuples_and_dataclasses():
    with pytest.raises(ValueError, match=r"key path \.y\.bias: expected a list"):
        tree.map(lambda x, y: x, Point(1, Layer(1, [2])), Point(1, Layer(1, 2)))


def test_flatten_up_to_reports_the_path():
    treedef = tree.structure({"a": [0, 0]})
    assert treedef.flatten_up_to({"a": [[1], {"b": 2}]}) == [[1], {"b": 2}]
    with pytest.raises(ValueError, match=r"PyTreeDef.flatten_up_to: .*key path \['a'\]"):
        treedef.flatten_up_to({"a": (1, 2)})


# -------------------------------------------------------------------------- paths


def test_key_paths_and_keystr_for_nested_structures():
    params = {"layers": [{"w": 1, "b": 2}], "head": Layer(3, 4), "pt": Point(5, 6)}
    pairs, _ = tree.flatten_with_path(params)
    assert [(tree.keystr(path), leaf) for path, leaf in pairs] == [
        ("['head'].weight", 3),
        ("['head'].bias", 4),
        ("['layers'][0]['b']", 2),
        ("['layers'][0]['w']", 1),
        ("['pt'].x", 5),
        ("['pt'].y", 6),
    ]
    first_path = pairs[2][0]
    assert first_path == (tree.DictKey("layers"), tree.SequenceKey(0), tree.DictKey("b"))
    assert tree.keystr(first_path, simple=True, separator="/") == "layers/0/b"
    assert tree.keystr(first_path, simple=True) == "layers0b"
    assert tree.keystr((tree.GetAttrKey("weight"),)) == ".weight"
    assert tree.keystr(()) == ""


def test_key_entries_are_hashable_values_with_jax_reprs():
    assert tree.DictKey("a") == tree.DictKey("a")
    assert tree.DictKey("a") != tree.GetAttrKey("a")
    assert len({tree.SequenceKey(0), tree.SequenceKey(0)}) == 1
    assert repr(tree.DictKey("a")) == "DictKey(key='a')"
    assert repr(tree.SequenceKey(1)) == "SequenceKey(idx=1)"
    assert repr(tree.GetAttrKey("w")) == "GetAttrKey(name='w')"
    assert repr(tree.FlattenedIndexKey(2)) == "FlattenedIndexKey(key=2)"


def test_map_with_path_and_leaves_with_path():
    t = {"a": [1, 2], "b": 3}
    named = tree.map_with_path(lambda path, x, y: f"{tree.keystr(path)}:{x + y}", t, t)
    assert named == {"a": ["['a'][0]:2", "['a'][1]:4"], "b": "['b']:6"}
    assert [leaf for _, leaf in tree.leaves_with_path(t)] == [1, 2, 3]
    with pytest.raises(ValueError, match=r"map_with_path: rest\[0\].*key path \['a'\]"):
        tree.map_with_path(lambda path, x, y: x, t, {"a": [1], "b": 3})


def test_is_leaf_in_paths_and_at_the_root():
    t = {"a": (1, 2), "b": [None]}
    pairs = tree.leaves_with_path(t, is_leaf=lambda x: isinstance(x, tuple) or x is None)
    assert pairs == [
        ((tree.DictKey("a"),), (1, 2)),
        ((tree.DictKey("b"), tree.SequenceKey(0)), None),
    ]
    assert tree.leaves(t, is_leaf=lambda x: x is t) == [t]


def test_is_leaf_is_honoured_at_every_level():
    seen = []

    def is_leaf(x):
        seen.append(x)
        return isinstance(x, list) and len(x) == 1

    t = ([1, 2], [[3], 4])
    assert tree.leaves(t, is_leaf=is_leaf) == [1, 2, [3], 4]
    # Called on the root, every interior node and every leaf candidate.
    assert seen == [t, [1, 2], 1, 2, [[3], 4], [3], 4]


# ------------------------------------------------------------------ custom nodes


class Box:
    def __init__(self, contents, label):
        self.contents = contents
        self.label = label

    def __eq__(self, other):
        return type(other) is Box and self.contents == other.contents and self.label == other.label


tree.register_node(
    Box,
    lambda box: ((box.contents,), box.label),
    lambda label, children: Box(children[0], label),
)


class Linear:
    def __init__(self, weight, bias):
        self.weight = weight
        self.bias = bias


tree.register_node_with_keys(
    Linear,
    lambda m: (((tree.GetAttrKey("weight"), m.weight), (tree.GetAttrKey("bias"), m.bias)), None),
    lambda _aux, children: Linear(*children),
)


def test_custom_node_round_trip_and_aux_data():
    t = [Box({"a": 1}, "first"), Box(2, "second")]
    leaves, treedef = tree.flatten(t)
    assert leaves == [1, 2]
    assert tree.unflatten(treedef, [3, 4]) == [Box({"a": 3}, "first"), Box(4, "second")]
    assert (
        repr(treedef)
        == "PyTreeDef([CustomNode(Box['first'], [{'a': *}]), CustomNode(Box['second'], [*])])"
    )
    # aux_data is part of the structure.
    assert treedef != tree.structure([Box({"a": 1}, "other"), Box(2, "second")])
    pairs = tree.leaves_with_path(t)
    assert [tree.keystr(p) for p, _ in pairs] == ["[0][<flat index 0>]['a']", "[1][<flat index 0>]"]


def test_custom_node_mismatch_reports_aux_data():
    with pytest.raises(
        ValueError, match=r"key path \[0\]: expected a Box node with auxiliary data 'x'"
    ):
        tree.map(lambda a, b: a, [Box(1, "x")], [Box(1, "y")])


def test_custom_node_with_keys():
    pairs, treedef = tree.flatten_with_path({"lin": Linear(1.0, 2.0)})
    assert [(tree.keystr(p), x) for p, x in pairs] == [
        ("['lin'].weight", 1.0),
        ("['lin'].bias", 2.0),
    ]
    rebuilt = tree.unflatten(treedef, [3.0, 4.0])["lin"]
    assert (rebuilt.weight, rebuilt.bias) == (3.0, 4.0)
    assert treedef == tree.structure({"lin": Linear(5, 6)})
    with pytest.raises(ValueError, match=r"key path \['lin'\]\.bias: expected a list"):
        tree.map(lambda x, y: x, {"lin": Linear(1, [2])}, {"lin": Linear(1, 2)})


def test_custom_node_with_keys_and_explicit_flatten():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

    calls = []

    def flatten(p):
        calls.append("flatten")
        return (p.a, p.b), None

    tree.register_node_with_keys(
        Pair,
        lambda p: (((tree.GetAttrKey("a"), p.a), (tree.GetAttrKey("b"), p.b)), None),
        lambda _aux, children: Pair(*children),
        flatten=flatten,
    )
    assert tree.leaves(Pair(1, 2)) == [1, 2]
    assert calls == ["flatten"]
    assert [tree.keystr(p) for p, _ in tree.leaves_with_path(Pair(1, 2))] == [".a", ".b"]


def test_registering_a_type_twice_fails():
    with pytest.raises(ValueError, match="already registered"):
        tree.register_node(Box, lambda b: ((), None), lambda aux, children: Box(None, None))
    with pytest.raises(ValueError, match="already registered"):
        tree.register_node(list, lambda b: ((), None), lambda aux, children: [])


def test_type_first_seen_as_leaf_can_be_registered_later():
    class Late:
        def __init__(self, value):
            self.value = value

    assert tree.leaves([Late(1)])[0].value == 1
    tree.register_node(Late, lambda x: ((x.value,), None), lambda _aux, children: Late(*children))
    assert tree.leaves([Late(1)]) == [1]


# -------------------------------------------------------------------- dataclasses


def test_dataclass_data_fields_are_leaves_and_static_fields_are_in_the_treedef():
    leaves, treedef = tree.flatten(Layer(weight=1, bias=2, name="conv"))
    assert leaves == [1, 2]
    assert repr(treedef) == "PyTreeDef(Layer(weight=*, bias=*, name='conv'))"
    rebuilt = tree.unflatten(treedef, [3, 4])
    assert rebuilt == Layer(3, 4, "conv")
    assert tree.structure(Layer(5, 6, "conv")) == treedef
    assert tree.structure(Layer(1, 2, "dense")) != treedef
    assert hash(tree.structure(Layer(5, 6, "conv"))) == hash(treedef)
    assert tree.map(lambda x: x * 10, Layer(1, 2, "conv")) == Layer(10, 20, "conv")


def test_dataclass_static_field_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"static fields \{'name': 'dense'\}.*\{'name': 'conv'\}"):
        tree.map(lambda x, y: x, Layer(1, 2), Layer(1, 2, "conv"))


def test_register_dataclass_with_explicit_fields_on_a_plain_class():
    class Opt:
        def __init__(self, step, lr):
            self.step = step
            self.lr = lr

    tree.register_dataclass(Opt, data_fields=["step"], meta_fields=["lr"])
    leaves, treedef = tree.flatten(Opt(step=3, lr=0.1))
    assert leaves == [3]
    rebuilt = tree.unflatten(treedef, [4])
    assert (rebuilt.step, rebuilt.lr) == (4, 0.1)


def test_register_dataclass_frozen_and_init_false_fields():
    @tree.register_dataclass
    @dataclasses.dataclass(frozen=True)
    class Stats:
        mean: Any
        count: int = dataclasses.field(default=0, metadata={"static": True})
        doubled: Any = dataclasses.field(init=False, default=None)

        def __post_init__(self):
            object.__setattr__(self, "doubled", self.mean * 2)

    leaves, treedef = tree.flatten(Stats(1.5, 3))
    assert leaves == [1.5]
    assert tree.unflatten(treedef, [2.0]) == Stats(2.0, 3)
    assert tree.unflatten(treedef, [2.0]).doubled == 4.0


def test_register_dataclass_errors():
    class NotADataclass:
        pass

    with pytest.raises(TypeError, match="not a dataclass"):
        tree.register_dataclass(NotADataclass)
    with pytest.raises(TypeError, match="must be given together"):
        tree.register_dataclass(NotADataclass, data_fields=["a"])

    @dataclasses.dataclass
    class Two:
        a: Any
        b: Any

    with pytest.raises(TypeError, match="exactly once"):
        tree.register_dataclass(Two, data_fields=["a"], meta_fields=[])


def test_register_dataclass_drop_fields():
    @dataclasses.dataclass
    class Cached:
        value: Any
        cache: Any = None

    tree.register_dataclass(Cached, data_fields=["value"], meta_fields=[], drop_fields=["cache"])
    leaves, treedef = tree.flatten(Cached(1, cache="stale"))
    assert leaves == [1]
    assert tree.unflatten(treedef, [2]) == Cached(2, None)


# ----------------------------------------------------------------------- treedefs


def test_treedef_equality_and_hash():
    a = tree.structure({"x": [1, 2], "y": None})
    b = tree.structure({"y": None, "x": ["p", "q"]})
    assert a == b and hash(a) == hash(b)
    assert a != tree.structure({"x": (1, 2), "y": None})
    assert a != tree.structure({"x": [1, 2], "y": 0})
    assert tree.structure([1, 2]) != tree.structure((1, 2))
    assert tree.structure(Point(1, 2)) != tree.structure((1, 2))
    assert tree.structure(1) == tree.structure("anything")
    assert tree.structure([1]) != "not a treedef"
    cache = {a: "hit"}
    assert cache[b] == "hit"


def test_treedef_introspection():
    treedef = tree.structure({"a": 1, "b": [2, None]})
    assert treedef.num_leaves == 2
    assert treedef.num_nodes == 5  # the dict, its leaf, the list, its leaf and None
    assert treedef.children() == [tree.structure(0), tree.structure([0, None])]
    assert treedef.node_data() == (dict, ("a", "b"))
    assert tree.structure(5).node_data() is None
    assert tree.structure(5).children() == []


def test_treedef_repr():
    assert repr(tree.structure({"a": 1, "b": [2, 3]})) == "PyTreeDef({'a': *, 'b': [*, *]})"
    assert repr(tree.structure((1,))) == "PyTreeDef((*,))"
    assert repr(tree.structure(None)) == "PyTreeDef(None)"
    assert repr(tree.structure(7)) == "PyTreeDef(*)"
    assert repr(tree.structure(Point(1, 2))) == "PyTreeDef(Point(x=*, y=*))"
    assert (
        repr(tree.structure(collections.OrderedDict(b=1, a=2)))
        == "PyTreeDef(OrderedDict({'b': *, 'a': *}))"
    )
    assert (
        repr(tree.structure(collections.defaultdict(list, a=1)))
        == "PyTreeDef(defaultdict(<class 'list'>, {'a': *}))"
    )


def test_compose():
    outer = tree.structure([0, 0])
    inner = tree.structure({"a": 0, "b": 0})
    composed = outer.compose(inner)
    assert composed == tree.structure([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    assert composed.num_leaves == 4


# --------------------------------------------------------------- all / reduce / transpose


def test_all_and_reduce():
    assert tree.all({"a": True, "b": [1, 2]})
    assert not tree.all([True, (0,)])
    assert tree.all([])
    assert tree.all([None, (0,)], is_leaf=lambda x: isinstance(x, tuple))
    assert tree.reduce(operator.add, {"a": 1, "b": [2, 3]}) == 6
    assert tree.reduce(operator.add, {"a": 1}, initializer=10) == 11
    assert tree.reduce(operator.add, [], initializer=0) == 0
    assert (
        tree.reduce(
            lambda acc, t: acc + len(t), [(1, 2), (3,)], 0, is_leaf=lambda x: isinstance(x, tuple)
        )
        == 3
    )
    with pytest.raises(TypeError):
        tree.reduce(operator.add, [])


def test_transpose():
    outer = tree.structure([0, 0, 0])
    inner = tree.structure({"a": 0, "b": 0})
    batch = [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    assert tree.transpose(outer, inner, batch) == {"a": [1, 3, 5], "b": [2, 4, 6]}
    assert tree.transpose(outer, None, batch) == {"a": [1, 3, 5], "b": [2, 4, 6]}
    # Transposing twice gives the original back.
    back = tree.transpose(inner, outer, tree.transpose(outer, inner, batch))
    assert back == batch


def test_transpose_structure_mismatch():
    outer = tree.structure([0, 0])
    inner = tree.structure((0, 0))
    with pytest.raises(TypeError, match="transpose: pytree_to_transpose has structure"):
        tree.transpose(outer, inner, [(1, 2), [3, 4]])
    with pytest.raises(ValueError, match="cannot infer inner_treedef"):
        tree.transpose(tree.structure([]), None, [])


# -------------------------------------------------------------------------- ravel


def _numpy_namespace():
    fnp = pytest.importorskip("functorch_lite.numpy")
    # An empty functorch_lite/numpy/ directory imports as a namespace package, so
    # also skip until the functions ravel needs are there.
    if not hasattr(fnp, "concatenate"):
        pytest.skip("functorch_lite.numpy does not provide concatenate yet")
    return fnp


def test_ravel_round_trip_with_mixed_dtypes():
    fnp = _numpy_namespace()
    t = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": [np.array([1, 2], dtype=np.int32), np.array(7.5, dtype=np.float64)],
    }
    flat, unravel = tree.ravel(t)
    assert flat.shape == (9,)
    assert flat.dtype == np.result_type(np.float32, np.int32, np.float64)
    np.testing.assert_array_equal(np.asarray(flat), [1, 2, 7.5, 0, 1, 2, 3, 4, 5])

    rebuilt = unravel(flat)
    assert tree.structure(rebuilt) == tree.structure(t)
    for original, restored in zip(tree.leaves(t), tree.leaves(rebuilt), strict=True):
        assert restored.shape == original.shape
        assert restored.dtype == original.dtype
        np.testing.assert_array_equal(np.asarray(restored), original)

    doubled = unravel(flat * 2)
    np.testing.assert_array_equal(np.asarray(doubled["w"]), t["w"] * 2)

    with pytest.raises(ValueError, match=r"unravel: expected a 1-D array of shape \(9,\)"):
        unravel(fnp.asarray(np.zeros(8)))


def test_ravel_empty_tree():
    _numpy_namespace()
    flat, unravel = tree.ravel({"a": [], "b": None})
    assert flat.shape == (0,)
    assert unravel(flat) == {"a": [], "b": None}
