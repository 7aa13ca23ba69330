"""Run-time logic shared by the backends that run shards (local, Slurm, Kubernetes).

Shards and placeholders (``shards.py``, ``placeholders.py``, re-exported by
``exo.backends.api``), a shard attempt's environment (``launch.py``), output
folders (``outputs.py``), the missing-secrets check (``secrets.py``), run ids
(``runs.py``), step states and progress reporters (``progress.py``), checkpoint
folders (``checkpoints.py``), the run ledger and what is read from it
(``ledger.py``, ``actuals.py``, ``calibrate.py``), the deadline-aware fallback
(``fallback.py``) and what a hostile machine does to a run (``failures.py``,
``outlock.py``, ``escapes.py``, ``trash.py``). A backend imports these, never
another backend.
"""
