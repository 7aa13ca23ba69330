"""The ``kubernetes`` backend: Indexed Jobs and an Argo Workflow DAG (DESIGN §6)."""

from .backend import KubernetesBackend
from .options import KubernetesOptions

__all__ = ["KubernetesBackend", "KubernetesOptions"]
