"""The base of exo's immutable pydantic values (IR, catalog, plan, calibration, backend
options and run state): frozen, and unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
