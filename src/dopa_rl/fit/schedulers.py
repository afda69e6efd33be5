"""Where the subject fits run: in this process (all local cores through the compiled kernels' threads), or on
a dask.distributed cluster (``--scheduler ADDRESS`` or ``--scheduler local:N`` for a LocalCluster of N
single-threaded worker processes).

Work is split by subject.  Every subject's start points come from the run's seed and its id, and lanes of
the batched optimiser never interact, so a subject's fit is the same whichever chunk it lands in: results
on a cluster are identical to the serial run for the same seed.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from dopa_rl.errors import InputError
from dopa_rl.models.base import Packed


def subset_packed(data: Packed, idx) -> Packed:
    """The subjects ``idx`` (positions) of ``data``; per-subject arrays in ``extra`` are sliced too."""
    idx = np.asarray(idx, dtype=np.int64)
    S = data.n_subjects
    extra = {k: (v[idx] if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == S else v)
             for k, v in data.extra.items()}
    return dataclasses.replace(
        data, subjects=[data.subjects[i] for i in idx], n_trials=data.n_trials[idx], resets=data.resets[idx],
        rewards=data.rewards[idx], row_index=data.row_index[idx], n_obs=data.n_obs[idx], extra=extra)


def chunks(n: int, parts: int) -> list[np.ndarray]:
    """``n`` subjects in at most ``parts`` contiguous, non-empty chunks."""
    parts = max(1, min(parts, n))
    return [c for c in np.array_split(np.arange(n), parts) if c.size]


class Serial:
    """Everything in this process (the kernels use all local cores)."""

    n_workers = 1
    name = "local"

    def map(self, fn, items: list) -> list:
        return [fn(item) for item in items]

    def close(self) -> None:
        pass

    safe = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Dask:
    """A dask.distributed client: at an address, or on a LocalCluster of ``n`` worker processes."""

    def __init__(self, spec: str):
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - the [dask] extra
            raise InputError("`scheduler` needs dask.distributed: pip install 'dopa-rl[dask]'") from None
        self.name = spec
        self._cluster = None
        m = re.fullmatch(r"local:(\d+)", spec)
        try:
            if m:
                self._cluster = LocalCluster(n_workers=int(m.group(1)), threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=40)
                self._client = Client(self._cluster)
            else:
                self._client = Client(spec, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise InputError(f"`scheduler` {spec}: cannot connect ({type(exc).__name__}: {exc})") from None
        self.n_workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def map(self, fn, items: list) -> list:
        futures = self._client.map(fn, items, pure=False)
        return self._client.gather(futures)

    def close(self) -> None:
        for obj in (getattr(self, "_client", None), self._cluster):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # pragma: no cover - best effort on shutdown
                    pass
        self._client = None
        self._cluster = None

    safe = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parse_scheduler(spec: str | None) -> str | None:
    """Validate ``--scheduler`` text without connecting: None, ``local:N`` (N >= 1) or ``HOST:PORT`` / a URL."""
    if spec is None or spec == "":
        return None
    m = re.fullmatch(r"local:(\S*)", spec)
    if m:
        if not m.group(1).isdigit() or int(m.group(1)) < 1:
            raise InputError(f"`scheduler` {spec}: use local:N with N >= 1 worker processes, e.g. local:2")
        return spec
    if not re.fullmatch(r"([a-z]+://)?[\w.\-]+:\d+", spec):
        raise InputError(f"`scheduler` {spec}: give a dask scheduler address (tcp://HOST:PORT) or local:N")
    return spec


def get_scheduler(spec: str | None):
    spec = parse_scheduler(spec)
    return Serial() if spec is None else Dask(spec)
