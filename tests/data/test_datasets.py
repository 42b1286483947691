"""fl.data datasets: ArrayDataset, Subset, random_split, default_collate."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import data


def test_array_dataset_of_several_arrays_gives_tuples():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ds = data.ArrayDataset(x, y)
    assert len(ds) == 6
    sample = ds[4]
    assert type(sample) is tuple and all(type(leaf) is fl.Array for leaf in sample)
    np.testing.assert_array_equal(sample[0], x[4])
    assert int(sample[1]) == 4
    np.testing.assert_array_equal(ds[1:3][0], x[1:3])
    np.testing.assert_array_equal(ds[np.array([5, 0])][1], [5, 0])


def test_array_dataset_of_a_pytree_keeps_its_structure_and_dtypes():
    tree = {"image": np.zeros((4, 2, 2), np.float16), "meta": (np.arange(4), np.ones(4, bool))}
    ds = data.ArrayDataset(tree)
    sample = ds[2]
    assert fl.tree.structure(sample) == fl.tree.structure(tree)
    assert [leaf.dtype for leaf in fl.tree.leaves(sample)] == [np.float16, np.int64, np.bool_]


def test_array_dataset_does_not_copy_numpy_or_fl_arrays():
    x = np.arange(10.0)
    assert np.shares_memory(np.asarray(data.ArrayDataset(x)[0:3]), x)
    a = fnp.asarray(x)
    assert np.shares_memory(np.asarray(data.ArrayDataset(a)[0:3]), x)


def test_array_dataset_gather_copies():
    x = np.arange(10.0)
    ds = data.ArrayDataset(x)
    batch = ds.gather(slice(2, 5))
    np.testing.assert_array_equal(batch, [2.0, 3.0, 4.0])
    assert not np.shares_memory(np.asarray(batch), x)


def test_array_dataset_length_mismatch_names_leaves_and_lengths():
    with pytest.raises(ValueError, match=r"ArrayDataset.*\['x'\] has 5 samples.*\['y'\] has 4"):
        data.ArrayDataset({"x": np.zeros((5, 2)), "y": np.zeros(4)})
    with pytest.raises(ValueError, match=r"\[0\] has 3 samples .*\[1\] has 2"):
        data.ArrayDataset(np.zeros(3), np.zeros(2))


def test_array_dataset_rejects_scalars_and_nothing():
    with pytest.raises(ValueError, match=r"leaf \['b'\] is a scalar.*leading axis"):
        data.ArrayDataset({"a": np.zeros(3), "b": 1.0})
    with pytest.raises(TypeError, match="ArrayDataset\\(x, y\\)"):
        data.ArrayDataset()
    with pytest.raises(ValueError, match="no array leaves"):
        data.ArrayDataset({})


def test_dataset_protocol_is_structural():
    class Pairs:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return i, i

    assert isinstance(Pairs(), data.Dataset)
    assert isinstance(data.ArrayDataset(np.zeros(2)), data.Dataset)
    assert not isinstance(object(), data.Dataset)


# --------------------------------------------------------------------------------------
# Subset and random_split
# --------------------------------------------------------------------------------------
def test_subset_reads_the_given_indices_in_order_and_nests():
    ds = data.ArrayDataset(np.arange(10) * 10)
    sub = data.Subset(ds, [7, 2, 9])
    assert len(sub) == 3
    assert [int(sub[i]) for i in range(3)] == [70, 20, 90]
    assert int(sub[-1]) == 90
    np.testing.assert_array_equal(sub[np.array([2, 0])], [90, 70])
    inner = data.Subset(sub, [2, 0])
    assert [int(inner[i]) for i in range(2)] == [90, 70]


def test_subset_of_a_generic_dataset_passes_python_ints():
    seen = []

    class Recorder:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            seen.append(type(i))
            return i

    assert data.Subset(Recorder(), [3, 1])[1] == 1
    assert seen == [int]


def test_subset_keeps_a_private_copy_of_its_indices():
    indices = np.array([0, 1])
    sub = data.Subset(data.ArrayDataset(np.arange(5)), indices)
    indices[0] = 4
    assert int(sub[0]) == 0
    with pytest.raises(ValueError):
        sub.indices[0] = 3


def test_subset_errors():
    ds = data.ArrayDataset(np.arange(5))
    with pytest.raises(IndexError, match=r"Subset: index 5 is out of range.*\[0, 5\)"):
        data.Subset(ds, [0, 5])
    with pytest.raises(IndexError, match="index -1"):
        data.Subset(ds, [-1])
    with pytest.raises(TypeError, match="1-d sequence of ints, got float64"):
        data.Subset(ds, [0.5])
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        data.Subset(iter([1, 2]), [0])
    assert len(data.Subset(ds, [])) == 0


def _split_indices(parts):
    return [p.indices.tolist() for p in parts]


@pytest.mark.parametrize("sizes, lengths", [
    ([6, 3, 1], [6, 3, 1]),
    ([0.5, 0.5], [5, 5]),
    ([0.7, 0.2, 0.1], [7, 2, 1]),
    ([1 / 3, 1 / 3, 1 / 3], [4, 3, 3]),  # the remainder goes to the first parts (PyTorch)
    ([10, 0], [10, 0]),
])
def test_random_split_is_disjoint_covering_and_reproducible(sizes, lengths):
    ds = data.ArrayDataset(np.arange(10))
    parts = data.random_split(ds, sizes, fl.random.key(3))
    assert [len(p) for p in parts] == lengths
    flat = sum(_split_indices(parts), [])
    assert sorted(flat) == list(range(10))
    again = data.random_split(ds, sizes, fl.random.key(3))
    assert _split_indices(again) == _split_indices(parts)
    other = data.random_split(ds, sizes, fl.random.key(4))
    assert sum(_split_indices(other), []) != flat


def test_random_split_parts_read_the_dataset():
    ds = data.ArrayDataset(np.arange(10) * 3)
    train, val = data.random_split(ds, [7, 3], fl.random.key(0))
    assert [int(train[i]) for i in range(7)] == [3 * i for i in train.indices.tolist()]
    assert [int(val[i]) for i in range(3)] == [3 * i for i in val.indices.tolist()]


def test_random_split_errors():
    ds = data.ArrayDataset(np.arange(10))
    key = fl.random.key(0)
    with pytest.raises(ValueError, match=r"random_split: sizes \[3, 4\] sum to 7 .* 10"):
        data.random_split(ds, [3, 4], key)
    with pytest.raises(ValueError, match="fractions .* sum to 0.9"):
        data.random_split(ds, [0.5, 0.4], key)
    with pytest.raises(ValueError, match="sizes is empty"):
        data.random_split(ds, [], key)
    with pytest.raises(TypeError, match=r"key must be a PRNG key.*fl.random.key\(seed\)"):
        data.random_split(ds, [5, 5], 0)


# --------------------------------------------------------------------------------------
# default_collate
# --------------------------------------------------------------------------------------
def test_default_collate_stacks_leaves_and_turns_numbers_into_arrays():
    samples = [{"x": np.full(2, i, np.float64), "y": (i, float(i), i % 2 == 0)}
               for i in range(3)]
    batch = data.default_collate(samples)
    assert batch["x"].shape == (3, 2) and batch["x"].dtype == np.float64
    y_int, y_float, y_bool = batch["y"]
    assert y_int.dtype == np.int64 and y_int.tolist() == [0, 1, 2]
    assert y_float.dtype == np.float32  # Python floats take the default float dtype
    assert y_bool.tolist() == [True, False, True]
    assert all(type(leaf) is fl.Array for leaf in fl.tree.leaves(batch))


def test_default_collate_accepts_fl_arrays_and_numpy_scalars():
    batch = data.default_collate([(fnp.ones(2), np.int32(1)), (fnp.zeros(2), np.int32(2))])
    assert batch[0].tolist() == [[1, 1], [0, 0]] and batch[1].dtype == np.int32


def test_default_collate_names_samples_with_another_structure():
    with pytest.raises(ValueError, match=r"sample 0 is PyTreeDef\(\{'x': \*\}\) and sample 2"):
        data.default_collate([{"x": 1}, {"x": 2}, {"x": 3, "y": 4}])


def test_default_collate_names_the_leaf_with_another_shape():
    samples = [{"x": np.zeros(3)}, {"x": np.zeros(4)}]
    with pytest.raises(ValueError, match=r"leaf \['x'\] has shape \(3,\) in sample 0 but "
                                         r"\(4,\) in sample 1"):
        data.default_collate(samples)


def test_default_collate_rejects_strings():
    with pytest.raises(TypeError, match=r"leaf \[1\] of sample 0 is a str.*collate_fn"):
        data.default_collate([(1, "a"), (2, "b")])
    with pytest.raises(ValueError, match="no samples"):
        data.default_collate([])


def test_default_collate_walks_namedtuples_ordered_dicts_and_none():
    import collections

    Point = collections.namedtuple("Point", "x y")
    samples = [collections.OrderedDict(p=Point(i, np.full(2, i)), none=None) for i in range(3)]
    batch = data.default_collate(samples)
    assert type(batch) is collections.OrderedDict and batch["none"] is None
    assert type(batch["p"]) is Point
    assert batch["p"].x.tolist() == [0, 1, 2] and batch["p"].y.shape == (3, 2)


def test_default_collate_names_where_nested_structures_differ():
    samples = [{"a": (1, 2)}, {"a": (1, 2, 3)}]
    with pytest.raises(ValueError, match=r"at \['a'\] sample 0 is PyTreeDef\(\(\*, \*\)\) and "
                                         r"sample 1 is PyTreeDef\(\(\*, \*, \*\)\)"):
        data.default_collate(samples)
    with pytest.raises(ValueError, match=r"leaf \['a'\]\[1\] has shape \(\) in sample 0"):
        data.default_collate([{"a": (1, np.float32(2))}, {"a": (1, np.zeros(2))}])
