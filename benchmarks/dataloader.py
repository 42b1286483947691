"""One shuffled epoch of ``fl.data.DataLoader`` against a hand-written NumPy loop and
PyTorch's DataLoader.

(a) In-memory arrays: 60,000 x 784 float32 images and int64 labels (MNIST-shaped,
    188 MB), batch 256, shuffled, each batch touched (its first element read). Candidates:
    the loop written by hand in NumPy (a permutation, then one fancy index per array per
    batch: the floor for this work), ``fl.data.DataLoader`` over an ``ArrayDataset``, and,
    when installed, ``torch.utils.data.DataLoader`` over a ``TensorDataset``, by default
    (one ``__getitem__`` per sample, then ``default_collate`` stacks them) and with a
    ``BatchSampler`` as its sampler (one fancy index per tensor per batch, like ours).
(b) A dataset read one sample at a time (``__getitem__`` returns a dict of a 784-float32
    image and an int label; 10,000 samples, batch 256), in-process: a hand loop (list of
    samples, ``np.stack`` per field) against ``fl.data.DataLoader`` (default collate) and
    ``torch.utils.data.DataLoader`` (``default_collate``). Worker processes are left out:
    starting them costs a fixed ~0.3-1 s per epoch on this 2-core VM, which says nothing
    about the loaders.

Every candidate's epoch is checked (all samples once, batch shapes) before timing.
Ratios are against the hand-written NumPy loop.

Run: ``python -m benchmarks.dataloader [--threads N] [--json] [--quick]``
"""

from benchmarks import _timing

ARGS = _timing.setup("dataloader", description=__doc__)

import numpy as np  # noqa: E402

import functorch_lite as fl  # noqa: E402

N_IMAGES, FEATURES, BATCH = 60_000, 784, 256
N_SAMPLES = 10_000
BASELINE = "numpy (by hand)"


def _torch():
    try:
        import torch
        from torch.utils import data as torch_data
    except ImportError as e:
        print(f"  (skipping torch: {e})")
        return None, None
    _timing.torch_threads(torch, ARGS.threads)
    return torch, torch_data


class _Epochs:
    """Each call runs the next epoch of ``make_epoch(epoch)``, reading every batch."""

    def __init__(self, make_epoch, touch):
        self.make_epoch, self.touch, self.epoch = make_epoch, touch, 0

    def __call__(self):
        touch = self.touch
        for batch in self.make_epoch(self.epoch):
            touch(batch)
        self.epoch += 1


def _check_epoch(name, make_epoch, labels_of, n):
    seen = np.concatenate([np.asarray(labels_of(batch)) for batch in make_epoch(0)])
    if sorted(seen.tolist()) != list(range(n)):
        raise AssertionError(f"{name}: an epoch does not visit every sample once")


# --------------------------------------------------------------------------------------
# (a) in-memory arrays
# --------------------------------------------------------------------------------------
def array_candidates():
    rng = np.random.default_rng(0)
    images = rng.random((N_IMAGES, FEATURES), dtype=np.float32)
    labels = np.arange(N_IMAGES)  # labels = sample ids, so the checks see the order

    def numpy_epoch(epoch):
        order = np.random.default_rng(epoch).permutation(N_IMAGES)
        for start in range(0, N_IMAGES, BATCH):
            rows = order[start:start + BATCH]
            yield images[rows], labels[rows]

    loader = fl.data.DataLoader(fl.data.ArrayDataset(images, labels), BATCH, shuffle=True)
    makers = {BASELINE: numpy_epoch, "fl.data.DataLoader": loader.epoch}
    touch = lambda batch: batch[0][0, 0]  # noqa: E731
    torch, torch_data = _torch()
    if torch is not None:
        tensors = torch_data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
        per_sample = torch_data.DataLoader(tensors, batch_size=BATCH, shuffle=True)
        batched = torch_data.DataLoader(
            tensors, batch_size=None,
            sampler=torch_data.BatchSampler(torch_data.RandomSampler(tensors), BATCH, False))
        makers["torch DataLoader (default)"] = lambda epoch: iter(per_sample)
        makers["torch DataLoader (BatchSampler)"] = lambda epoch: iter(batched)
    for name, make in makers.items():
        _check_epoch(name, make, lambda batch: batch[1], N_IMAGES)
        first = next(iter(make(0)))
        assert tuple(first[0].shape) == (BATCH, FEATURES), name
    return {name: _Epochs(make, touch) for name, make in makers.items()}


# --------------------------------------------------------------------------------------
# (b) a dataset read sample by sample
# --------------------------------------------------------------------------------------
class Records:
    """A dataset whose ``__getitem__`` returns one record at a time."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": i}


def sample_candidates():
    records = Records(np.random.default_rng(1).random((N_SAMPLES, FEATURES), dtype=np.float32))

    def numpy_epoch(epoch):
        order = np.random.default_rng(epoch).permutation(N_SAMPLES)
        for start in range(0, N_SAMPLES, BATCH):
            samples = [records[i] for i in order[start:start + BATCH].tolist()]
            yield {"image": np.stack([s["image"] for s in samples]),
                   "label": np.array([s["label"] for s in samples])}

    loader = fl.data.DataLoader(records, BATCH, shuffle=True)
    makers = {BASELINE: numpy_epoch, "fl.data.DataLoader": loader.epoch}
    torch, torch_data = _torch()
    if torch is not None:
        torch_loader = torch_data.DataLoader(records, batch_size=BATCH, shuffle=True)
        makers["torch DataLoader (default)"] = lambda epoch: iter(torch_loader)
    for name, make in makers.items():
        _check_epoch(name, make, lambda batch: batch["label"], N_SAMPLES)
    touch = lambda batch: batch["image"][0, 0]  # noqa: E731
    return {name: _Epochs(make, touch) for name, make in makers.items()}


# --------------------------------------------------------------------------------------
def main():
    _timing.print_header(ARGS, "dataloader: one shuffled epoch vs a NumPy loop by hand")
    tables = {}
    for title, candidates in (
            (f"(a) in-memory arrays, {N_IMAGES:,} x {FEATURES} float32 + int64 labels, "
             f"batch {BATCH}, one epoch", array_candidates()),
            (f"(b) per-sample dataset, {N_SAMPLES:,} records of {FEATURES} float32 + an int, "
             f"batch {BATCH}, one epoch, in-process", sample_candidates())):
        results = _timing.compare(candidates, baseline=BASELINE, batch_ms=1.0, warmup=1)
        _timing.print_table(title, results, baseline=BASELINE)
        tables[title] = results
    _timing.save_json(ARGS, tables)


if __name__ == "__main__":
    main()
