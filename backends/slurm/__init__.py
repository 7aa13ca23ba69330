"""The ``slurm`` backend: sbatch job arrays chained by dependencies (DESIGN §6)."""

from .backend import SlurmBackend
from .options import SlurmOptions

__all__ = ["SlurmBackend", "SlurmOptions"]
