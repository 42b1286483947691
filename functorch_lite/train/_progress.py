"""Progress display for ``fit``: tqdm when installed, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time


def make_progress(enabled, epochs, file=None):
    """``Progress`` to use: off, tqdm bars, or plain lines (tqdm missing)."""
    if not enabled:
        return Progress(epochs, file)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return PlainProgress(epochs, file)
    return TqdmProgress(epochs, file, tqdm)


def format_metrics(logs):
    """``loss 0.1  mae 0.2  val_loss 0.3 ...``: training metrics first, each loss first."""
    def order(name):
        base = name.removeprefix("val_")
        return name.startswith("val_"), base != "loss", base

    return "  ".join(f"{name} {logs[name]:.4g}" for name in sorted(logs, key=order))


class Progress:
    """Silent: the interface every display implements."""

    def __init__(self, epochs, file):
        self.epochs, self.file = epochs, file

    def start_epoch(self, epoch, num_batches):
        pass

    def update(self, metrics):
        pass

    def end_epoch(self, epoch, logs):
        pass

    def close(self):
        pass


class PlainProgress(Progress):
    """One line per epoch (epoch, its metrics, its duration) on stdout."""

    def start_epoch(self, epoch, num_batches):
        self._start = time.perf_counter()

    def end_epoch(self, epoch, logs):
        seconds = time.perf_counter() - self._start
        print(f"epoch {epoch + 1}/{self.epochs}  {format_metrics(logs)}  ({seconds:.1f} s)",
              file=self.file or sys.stdout, flush=True)


class TqdmProgress(Progress):
    """A tqdm bar per epoch showing the running loss; it stays with the epoch's metrics."""

    def __init__(self, epochs, file, tqdm):
        super().__init__(epochs, file)
        self._tqdm, self._bar = tqdm, None

    def start_epoch(self, epoch, num_batches):
        self._bar = self._tqdm(total=num_batches, desc=f"epoch {epoch + 1}/{self.epochs}",
                               file=self.file, leave=True, dynamic_ncols=True)

    def update(self, metrics):
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{metrics['loss']:.4g}", refresh=False)

    def end_epoch(self, epoch, logs):
        self._bar.set_postfix_str(format_metrics(logs))
        self.close()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
