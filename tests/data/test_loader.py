"""fl.data.DataLoader in this process: epochs as pure functions of (seed, epoch), batching,
collation and argument errors. Worker processes are tested in test_loader_workers.py."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functorch_lite as fl
from functorch_lite import data


def _xy(n=10):
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n)


def _labels(loader, epoch):
    return [y.tolist() for _, y in loader.epoch(epoch)]


def test_same_seed_and_epoch_give_the_same_batches():
    x, y = _xy(50)
    make = lambda: data.DataLoader(data.ArrayDataset(x, y), 8, shuffle=True, seed=7)
    first, second = make(), make()
    assert _labels(first, 3) == _labels(second, 3) == _labels(first, 3)
    for (bx, by), (cx, cy) in zip(first.epoch(2), second.epoch(2)):
        np.testing.assert_array_equal(bx, cx)
        np.testing.assert_array_equal(by, cy)


def test_epochs_and_seeds_give_different_orders():
    loader = data.DataLoader(data.ArrayDataset(*_xy(50)), 50, shuffle=True, seed=0)
    orders = [_labels(loader, e)[0] for e in range(4)]
    assert all(sorted(order) == list(range(50)) for order in orders)
    assert len({tuple(order) for order in orders}) == 4
    other_seed = data.DataLoader(data.ArrayDataset(*_xy(50)), 50, shuffle=True, seed=1)
    assert _labels(other_seed, 0)[0] != orders[0]


def test_the_order_is_pinned():
    # The order is part of the contract (a run resumes from its epoch number on another
    # machine): a NumPy release that changed Generator.permutation would fail here.
    loader = data.DataLoader(data.ArrayDataset(np.arange(10)), 10, shuffle=True, seed=0)
    assert loader.indices(0).tolist() == [0, 7, 8, 6, 9, 5, 1, 3, 2, 4]
    assert loader.indices(1).tolist() == [9, 4, 2, 1, 0, 7, 8, 5, 3, 6]


def test_the_order_is_the_same_in_another_process():
    code = ("import functorch_lite as fl, numpy as np;"
            "ds = fl.data.ArrayDataset(np.arange(1000));"
            "print(fl.data.DataLoader(ds, 10, shuffle=True, seed=2**40 + 5).indices(9)"
            ".tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"})
    loader = data.DataLoader(data.ArrayDataset(np.arange(1000)), 10, shuffle=True,
                             seed=2**40 + 5)
    assert out.stdout.strip() == str(loader.indices(9).tolist())


def test_a_key_seed_is_the_same_as_its_int_seed():
    ds = data.ArrayDataset(np.arange(20))
    by_int = data.DataLoader(ds, 4, shuffle=True, seed=2**35 + 9)
    by_key = data.DataLoader(ds, 4, shuffle=True, seed=fl.random.key(2**35 + 9))
    assert by_int.indices(4).tolist() == by_key.indices(4).tolist()


def test_no_shuffle_walks_the_dataset_in_order():
    x, y = _xy(10)
    loader = data.DataLoader(data.ArrayDataset(x, y), 4)
    assert _labels(loader, 0) == _labels(loader, 5) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    batches = list(loader.epoch(0))
    np.testing.assert_array_equal(batches[1][0], x[4:8])
    # Batches are copies: they never alias the dataset's arrays.
    assert not np.shares_memory(np.asarray(batches[1][0]), x)


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_drop_last_and_len(drop_last, sizes):
    loader = data.DataLoader(data.ArrayDataset(*_xy(10)), 4, shuffle=True, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [len(y) for y in _labels(loader, 0)] == sizes


@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(),
       shuffle=st.booleans(), epoch=st.integers(0, 2**64 - 1))
def test_batches_cut_the_epoch_order(n, batch_size, drop_last, shuffle, epoch):
    loader = data.DataLoader(data.ArrayDataset(np.arange(n) * 3), batch_size,
                             shuffle=shuffle, drop_last=drop_last, seed=11)
    batches = [b.tolist() for b in loader.epoch(epoch)]
    assert len(batches) == len(loader)
    assert all(len(b) == batch_size for b in batches[:-1])
    order = loader.indices(epoch)
    assert sorted(order.tolist()) == list(range(n))
    assert sum(batches, []) == (3 * order[:len(sum(batches, []))]).tolist()
    assert len(sum(batches, [])) == (n - n % batch_size if drop_last else n)


def test_iterating_the_loader_walks_the_epochs():
    loader = data.DataLoader(data.ArrayDataset(*_xy(30)), 7, shuffle=True, seed=5)
    assert loader.next_epoch == 0
    walked = [[y.tolist() for _, y in loader] for _ in range(3)]
    assert walked == [_labels(loader, e) for e in range(3)]
    assert loader.next_epoch == 3
    loader.next_epoch = 1  # resume at epoch 1
    assert [y.tolist() for _, y in loader] == _labels(loader, 1)
    for _ in loader:  # a loop left early still used up its epoch
        break
    assert loader.next_epoch == 3


def test_dict_dataset_batches_are_dicts_of_arrays():
    tree = {"image": np.random.default_rng(0).random((9, 2, 2), np.float32),
            "label": {"class": np.arange(9), "weight": np.ones(9, np.float64)}}
    loader = data.DataLoader(data.ArrayDataset(tree), 4, shuffle=True, seed=3)
    order = loader.indices(0)
    for number, batch in enumerate(loader.epoch(0)):
        rows = order[number * 4:(number + 1) * 4]
        assert fl.tree.structure(batch) == fl.tree.structure(tree)
        assert all(type(leaf) is fl.Array for leaf in fl.tree.leaves(batch))
        np.testing.assert_array_equal(batch["image"], tree["image"][rows])
        assert batch["label"]["class"].tolist() == rows.tolist()
        assert batch["label"]["weight"].dtype == np.float64


def test_array_datasets_are_cut_with_one_gather_per_batch(monkeypatch):
    calls = []
    gather = data.ArrayDataset.gather
    monkeypatch.setattr(data.ArrayDataset, "gather",
                        lambda self, rows: calls.append(rows) or gather(self, rows))

    def no_sample_reads(self, index):
        raise AssertionError("the loader read one sample at a time")
    monkeypatch.setattr(data.ArrayDataset, "__getitem__", no_sample_reads)

    ds = data.ArrayDataset(np.arange(100) * 2)
    sub = data.Subset(data.Subset(ds, np.arange(99, -1, -1)), np.arange(0, 100, 3))
    loader = data.DataLoader(sub, 8, shuffle=True, seed=1)
    got = [b.tolist() for b in loader.epoch(0)]
    assert len(calls) == len(loader) == 5
    expected = [2 * (99 - 3 * i) for i in loader.indices(0)]
    assert sum(got, []) == expected


def _samples_dataset(n):
    class Samples:
        def __len__(self):
            return n

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i}
    return Samples()


def test_generic_datasets_are_collated_like_array_datasets():
    generic = data.DataLoader(_samples_dataset(11), 4, shuffle=True, seed=2)
    arrays = data.DataLoader(
        data.ArrayDataset({"x": np.repeat(np.arange(11, dtype=np.float32)[:, None], 2, 1),
                           "y": np.arange(11)}), 4, shuffle=True, seed=2)
    for got, want in zip(generic.epoch(1), arrays.epoch(1), strict=True):
        assert fl.tree.structure(got) == fl.tree.structure(want)
        for a, b in zip(fl.tree.leaves(got), fl.tree.leaves(want)):
            assert type(a) is fl.Array and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_collate_fn_gets_the_list_of_samples():
    seen = []

    def collate(samples):
        seen.append(len(samples))
        return np.stack([s["x"] for s in samples]).sum(), [s["y"] for s in samples]

    loader = data.DataLoader(_samples_dataset(5), 2, collate_fn=collate)
    batches = list(loader.epoch(0))
    assert seen == [2, 2, 1]
    total, ys = batches[0]
    assert type(total) is fl.Array and float(total) == 2.0
    assert ys == [0, 1]  # leaves that are not NumPy arrays are left alone


def test_collate_fn_on_an_array_dataset_reads_samples():
    loader = data.DataLoader(data.ArrayDataset(np.arange(6)), 3, collate_fn=list)
    first = next(iter(loader.epoch(0)))
    assert [int(v) for v in first] == [0, 1, 2]


def test_an_error_in_getitem_is_raised_with_a_note_naming_the_sample():
    class Broken:
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i == 4:
                raise KeyError("missing file 4.png")
            return i

    with pytest.raises(KeyError, match="missing file 4.png") as info:
        list(data.DataLoader(Broken(), 2).epoch(0))
    assert any("dataset[4]" in note for note in info.value.__notes__)


def test_a_collate_error_names_the_samples():
    class Ragged:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.zeros(i + 1)

    with pytest.raises(ValueError, match=r"shape \(1,\) in sample 0 but \(2,\) in sample 1"):
        list(data.DataLoader(Ragged(), 2).epoch(0))


def test_empty_dataset_has_no_batches():
    loader = data.DataLoader(data.ArrayDataset(np.zeros((0, 3))), 4, shuffle=True)
    assert len(loader) == 0 and list(loader) == []


@pytest.mark.skipif(len(fl.devices()) < 2, reason="needs a GPU")
def test_batches_go_to_the_default_device():
    loader = data.DataLoader(data.ArrayDataset(np.arange(8.0)), 4, shuffle=True)
    with fl.config.set_default_device("cuda:0"):
        batch = next(iter(loader.epoch(0)))
        generic = next(iter(data.DataLoader(_samples_dataset(4), 4).epoch(0)))
    assert batch.device == "cuda:0" and generic["x"].device == "cuda:0"


def test_importing_the_library_does_not_import_multiprocessing():
    code = "import sys, functorch_lite; print('multiprocessing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_repr():
    loader = data.DataLoader(data.ArrayDataset({"x": np.zeros((10, 2))}), 4, shuffle=True)
    assert repr(loader) == ("DataLoader(ArrayDataset(['x']: float64[10, 2]), batch_size=4, "
                            "shuffle=True, seed=0; 3 batches)")


# --------------------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, got 0"),
    ({"batch_size": -2}, ValueError, "batch_size must be an int >= 1"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an int >= 1, got 2.5 \(float\)"),
    ({"batch_size": True}, TypeError, "batch_size must be an int"),
    ({"num_workers": -1}, ValueError, "num_workers must be an int >= 0"),
    ({"prefetch": 0}, ValueError, "prefetch must be an int >= 1"),
    ({"seed": 1.5}, TypeError, r"seed must be an int or a key from fl.random.key"),
    ({"collate_fn": 3}, TypeError, "collate_fn must be callable"),
    ({"start_method": "thread"}, ValueError, "start_method must be 'forkserver', 'spawn'"),
])
def test_bad_arguments_name_the_loader_and_the_fix(kwargs, error, pattern):
    args = {"dataset": data.ArrayDataset(np.arange(4)), "batch_size": 2, **kwargs}
    with pytest.raises(error, match="fl.data.DataLoader: " + pattern):
        data.DataLoader(**args)


def test_bad_datasets_are_named():
    with pytest.raises(TypeError, match=r"must have __len__ and __getitem__.*got generator"
                                        r".*ArrayDataset\(x, y\)"):
        data.DataLoader((i for i in range(3)), 2)
    with pytest.raises(TypeError, match=r"a dict is not a dataset.*ArrayDataset"):
        data.DataLoader({"x": np.zeros(3)}, 2)


def test_bad_epochs_are_named():
    loader = data.DataLoader(data.ArrayDataset(np.arange(4)), 2, shuffle=True)
    with pytest.raises(ValueError, match=r"epoch must be an int in \[0, \d+\), got -1"):
        loader.epoch(-1)
    with pytest.raises(ValueError, match=rf"epoch must be an int in \[0, \d+\), got {2**64}"):
        loader.epoch(2**64)
    with pytest.raises(TypeError, match=r"epoch must be an int in \[0, \d+\), got 1.0"):
        loader.indices(1.0)
