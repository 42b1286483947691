"""fl.data.DataLoader with worker processes: the same batches as in-process loading, errors
and deaths reported here, and no worker outliving its epoch. Few and small: each epoch with
workers starts processes (~0.5 s with 'forkserver')."""

import gc
import multiprocessing
import os

import numpy as np
import pytest
from data_samples import Squares, sum_collate

import functorch_lite as fl
from functorch_lite import data


def _batches(loader, epoch):
    return [fl.tree.map(np.asarray, batch) for batch in loader.epoch(epoch)]


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _assert_workers_stopped(pids):
    live = {child.pid for child in multiprocessing.active_children()}  # also reaps them
    assert not pids & live
    assert all(_gone(pid) for pid in pids)


def test_workers_give_the_same_batches_as_in_process_loading():
    in_process = data.DataLoader(Squares(23), 4, shuffle=True, seed=9)
    workers = data.DataLoader(Squares(23), 4, shuffle=True, seed=9, num_workers=2, prefetch=1)
    got, want = _batches(workers, 3), _batches(in_process, 3)
    assert len(got) == len(want) == 6
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["y"], b["y"])
        assert a["x"].dtype == np.float32 and a["y"].dtype == np.int64
    pids = {int(pid) for batch in got for pid in batch["pid"]}
    assert len(pids) == 2 and os.getpid() not in pids  # both workers made batches
    _assert_workers_stopped(pids)


def test_workers_apply_the_collate_fn():
    loader = data.DataLoader(Squares(7), 3, num_workers=2, collate_fn=sum_collate)
    batches = list(loader.epoch(0))
    assert [b["y"].tolist() for b in batches] == [[0, 1, 4], [9, 16, 25], [36]]
    assert type(batches[1]["x_sum"]) is fl.Array
    assert batches[1]["x_sum"].tolist() == [12.0, 12.0, 12.0]


def test_an_error_in_a_worker_is_raised_here_naming_the_sample():
    loader = data.DataLoader(Squares(12, fail_at=7), 2, num_workers=2)
    seen = []
    with pytest.raises(ValueError) as info:
        for batch in loader.epoch(0):
            seen.append(batch["y"].tolist())
    assert seen == [[0, 1], [4, 9], [16, 25]]  # the batches before the failing one
    message = str(info.value)
    assert message.startswith("corrupt record 7")
    assert "dataset[7]" in message and "sample 7" in message and "worker 1" in message
    assert "in __getitem__" in message  # the worker's traceback


def test_a_dead_worker_is_an_error_not_a_hang():
    # Sample 5 is in batch 2, made by worker 0; dying, it may take batch 0 along.
    loader = data.DataLoader(Squares(8, exit_at=5), 2, num_workers=2)
    with pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+\) exited with code 3 before "
                                           r"sending batch [02]\. .*num_workers=0"):
        list(loader.epoch(0))


def test_breaking_out_of_the_loop_stops_the_workers():
    loader = data.DataLoader(Squares(40), 2, num_workers=2, prefetch=2)
    pids = set()
    for number, batch in enumerate(loader):
        pids.update(int(pid) for pid in batch["pid"])
        if number == 1:
            break
    assert len(pids) == 2
    _assert_workers_stopped(pids)


def test_collecting_the_iterator_and_loader_stops_the_workers():
    loader = data.DataLoader(Squares(40), 2, num_workers=2)
    batches = iter(loader)
    pids = {int(pid) for pid in next(batches)["pid"]} | {int(pid) for pid in
                                                        next(batches)["pid"]}
    del batches, loader
    gc.collect()
    _assert_workers_stopped(pids)


def test_an_unpicklable_collate_fn_is_named_with_the_fix():
    loader = data.DataLoader(Squares(4), 2, num_workers=2, collate_fn=lambda s: s)
    with pytest.raises(TypeError, match=r"worker processes \(start method 'forkserver'\).*"
                                        r"start_method='fork'"):
        list(loader.epoch(0))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_forked_workers_take_lambdas_and_stop_on_break():
    loader = data.DataLoader(Squares(30), 3, shuffle=True, num_workers=2, start_method="fork",
                             collate_fn=lambda samples: [s["pid"] for s in samples])
    want = data.DataLoader(Squares(30), 3, shuffle=True, collate_fn=lambda s: len(s))
    assert [len(b) for b in loader.epoch(0)] == list(want.epoch(0))
    pids = set()
    for batch in loader.epoch(1):
        pids.update(batch)
        break
    _assert_workers_stopped(pids)
