"""The ``local`` backend: runs a plan as real processes on this machine (DESIGN §6)."""

from .backend import LocalBackend, LocalOptions

__all__ = ["LocalBackend", "LocalOptions"]
