"""exo's worker helper: resumable shards for commands written in Python.

Standard library only, and importable without the rest of exo (no pydantic,
numpy or optimizer): install ``exoc`` with ``--no-deps`` in an image, or rely
on the local and Slurm backends, which put this package on every shard's
``PYTHONPATH``.

Typical use (``docs/resumable-commands.md``)::

    from exo.worker import shard

    s = shard()                      # this shard, from the EXO_* variables
    model = load_model()             # startup: paid once per attempt
    for batch in s:                  # only the micro-batches not committed yet
        rows = [model(i) for i in batch.items]
        batch.commit({"part.jsonl": "".join(rows)})
    s.assemble()                     # the output, from every committed batch
"""

from .contract import FORMAT, AttemptRecord, BatchRecord, Progress, read_progress
from .shard import Batch, Shard, WorkerError, process_start_time, shard

__all__ = [
    "FORMAT",
    "AttemptRecord",
    "Batch",
    "BatchRecord",
    "Progress",
    "Shard",
    "WorkerError",
    "process_start_time",
    "read_progress",
    "shard",
]
