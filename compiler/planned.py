"""What the compiler hands a backend: a workflow's IR, the plan for it and the catalog used.

The compiler makes it (:func:`exo.compiler.pipeline.plan_for`); backends
receive it (``exo.backends.api`` re-exports it under the same name, where the
backend interface documents it). It is a value: frozen, built once per plan.
"""

from __future__ import annotations

from exo.compiler.catalog import Catalog
from exo.compiler.frozen import Frozen
from exo.compiler.ir import Program
from exo.compiler.plan import Plan, StepPlan


class PlannedWorkflow(Frozen):
    """Everything a backend needs: the IR, the plan for it and the catalog used."""

    program: Program
    plan: Plan
    catalog: Catalog
    #: Folder of the entry ``.exo`` file: relative ``output`` paths are resolved against it.
    base_dir: str

    def step_plan(self, name: str) -> StepPlan:
        sp = self.plan.step(name)
        if sp is None:
            raise KeyError(f"the plan has no step {name!r}")
        return sp
