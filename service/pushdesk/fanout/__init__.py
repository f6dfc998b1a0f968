"""Fan-out: plan alerts into shards, work them with reader policy, send through webpush."""

from .worker import FanoutWorker, WorkerOptions

__all__ = ["FanoutWorker", "WorkerOptions"]
