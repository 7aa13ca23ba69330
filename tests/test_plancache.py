"""Kept plans (``exo.compiler.plancache``): what runs is the plan that was shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exo.compiler import plancache
from exo.compiler.frontend import compile_file
from exo.compiler.pipeline import plan_compiled, plan_for
from exo.compiler.plan import Plan
from exo.compiler.plancache import PlanCache

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart.exo"


@pytest.fixture(scope="module")
def planned() -> tuple[str, Plan]:
    """The quickstart's key (in any folder) and its plan, searched to the end."""
    compiled = compile_file(QUICKSTART, {})
    plan = plan_compiled(compiled)
    assert plan.status == "optimal"
    return PlanCache(Path("unused")).key(compiled.program, compiled.catalog), plan


def test_an_optimal_plan_serves_every_time_limit(tmp_path: Path, planned: tuple[str, Plan]) -> None:
    key, plan = planned
    cache = PlanCache(tmp_path)
    assert cache.load(key, None) is None
    cache.store(key, 60.0, plan)
    assert cache.load(key, None) == plan
    assert cache.load(key, 5.0) == plan
    assert cache.load("0" * 64, None) is None


def test_a_plan_cut_short_serves_its_own_time_limit_only(
    tmp_path: Path, planned: tuple[str, Plan]
) -> None:
    key, plan = planned
    cut = plan.model_copy(update={"status": "feasible", "gap": 0.25})
    cache = PlanCache(tmp_path)
    cache.store(key, 10.0, cut)
    assert cache.load(key, 10.0) == cut
    assert cache.load(key, 30.0) is None
    assert cache.load(key, None) is None  # a search to the end may do better


def test_infeasible_plans_are_not_kept(tmp_path: Path, planned: tuple[str, Plan]) -> None:
    key, plan = planned
    cache = PlanCache(tmp_path)
    cache.store(key, None, plan.model_copy(update={"status": "infeasible"}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "",
        lambda text: text[: len(text) // 2],
        lambda text: text.replace('{"format": 1}', '{"format": 0}', 1),
        lambda text: text.split("\n", 1)[1],  # no header
        lambda text: text.replace('"status":"optimal"', '"status":"unknown"', 1),
    ],
    ids=["empty", "cut", "other format", "no header", "not a plan"],
)
def test_a_damaged_file_is_a_miss(
    tmp_path: Path, planned: tuple[str, Plan], damage: object
) -> None:
    key, plan = planned
    cache = PlanCache(tmp_path)
    cache.store(key, None, plan)
    (kept,) = tmp_path.iterdir()
    assert callable(damage)
    kept.write_text(damage(kept.read_text()))
    assert cache.load(key, None) is None


def test_the_key_follows_the_ir_the_catalog_and_the_calibration() -> None:
    cache = PlanCache(Path("unused"))
    base = compile_file(QUICKSTART, {})
    other = compile_file(REPO / "examples" / "overnight_classify.exo", {})
    key = cache.key(base.program, base.catalog)
    assert key == cache.key(compile_file(QUICKSTART, {}).program, base.catalog)
    assert key != cache.key(other.program, base.catalog)
    assert key != cache.key(base.program, other.catalog.model_copy(update={"name": "x"}))
    assert key != cache.key(base.program, base.catalog, ["calibrated: startup 2 s"])


def test_the_newest_plans_are_kept(
    tmp_path: Path, planned: tuple[str, Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, plan = planned
    monkeypatch.setattr(plancache, "KEEP", 3)
    cache = PlanCache(tmp_path)
    for i in range(5):
        cache.store(f"{i:064d}", None, plan)
        os.utime(tmp_path / f"{i:064d}.optimal.json", ns=(i * 10**9, i * 10**9))
    assert sorted(p.name[:64] for p in tmp_path.iterdir()) == [f"{i:064d}" for i in (2, 3, 4)]


def test_an_unwritable_folder_keeps_nothing_and_fails_nothing(
    tmp_path: Path, planned: tuple[str, Plan]
) -> None:
    key, plan = planned
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    cache = PlanCache(blocked / "plans")
    cache.store(key, None, plan)
    assert cache.load(key, None) is None


def test_the_folder_comes_from_the_environment(tmp_path: Path) -> None:
    assert PlanCache.from_environ({"EXO_PLAN_CACHE": str(tmp_path)}) == PlanCache(tmp_path)
    assert PlanCache.from_environ({"EXO_PLAN_CACHE": "off"}) is None
    assert PlanCache.from_environ({"EXO_PLAN_CACHE": ""}) is None
    default = PlanCache.from_environ({"XDG_CACHE_HOME": str(tmp_path)})
    assert default == PlanCache(tmp_path / "exo" / "plans")


def test_plan_for_uses_a_kept_plan_and_keeps_what_it_searched(tmp_path: Path) -> None:
    cache = PlanCache(tmp_path)
    first, _ = plan_for(QUICKSTART, {}, cache=cache)
    (kept,) = tmp_path.iterdir()
    # a kept plan is trusted by its key: one marked here must come back as it is
    header, _, body = kept.read_text().partition("\n")
    marked = json.loads(body) | {"solve_time_s": 1234.5}
    kept.write_text(header + "\n" + json.dumps(marked))
    again, _ = plan_for(QUICKSTART, {}, cache=cache)
    assert again.plan.solve_time_s == 1234.5
    assert again.plan.model_copy(update={"solve_time_s": first.plan.solve_time_s}) == first.plan
    assert plan_for(QUICKSTART, {}, cache=None)[0].plan.solve_time_s != 1234.5  # searched


def _imported(argv: list[str], cwd: Path, env: dict[str, str]) -> set[str]:
    """The modules ``exoc ARGV`` imported (``python -X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(Path(sys.executable).with_name("exoc")), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (line.rpartition("|")[2].strip() for line in done.stderr.splitlines())
    return {name for name in lines if name}


def test_the_verbs_after_exoc_plan_do_not_search_again(tmp_path: Path) -> None:
    flow = tmp_path / "quickstart.exo"
    flow.write_text(QUICKSTART.read_text())
    env = dict(os.environ, EXO_PLAN_CACHE=str(tmp_path / "plans"))
    optimizer = "exo.compiler.optimizer"
    assert optimizer in _imported(["plan", flow.name, "--format", "json", "-o", "p"], tmp_path, env)
    for verb in (["status", flow.name], ["compile", flow.name, "--target", "slurm", "-o", "out"]):
        assert optimizer not in _imported(verb, tmp_path, env), verb
    env["EXO_PLAN_CACHE"] = "off"
    assert optimizer in _imported(["status", flow.name], tmp_path, env)


def test_a_run_of_a_kept_plan_neither_searches_nor_loads_the_poisson_tail(tmp_path: Path) -> None:
    """The run-time fallback reads each spot step's figures from the plan's ``P``.

    Nor numpy: the cost model's arrays load only to enumerate options, and the
    trace's clock only with a trace (80 ms of the 0.45 s a one-shard run took)."""
    flow = tmp_path / "spot.exo"
    flow.write_text(
        "workflow spot {\n  deadline = 1h\n  budget = $100\n}\n\n"
        'step work {\n  command = ["true"]\n  items = 40\n  cpu = 1\n'
        "  throughput { cpu = 10 }\n  replicas = 4\n}\n"
    )
    env = dict(os.environ, EXO_PLAN_CACHE=str(tmp_path / "plans"))
    first = _imported(["run", flow.name], tmp_path, env)
    assert "exo.compiler.optimizer" in first and "scipy.special._ufuncs" in first
    plan = json.loads(next((tmp_path / "plans").iterdir()).read_text().split("\n", 1)[1])
    assert [s["spot"] for s in plan["steps"]] == [True]  # the fallback has a step to watch
    again = _imported(["run", flow.name, "--fresh"], tmp_path, env)
    assert "exo.backends.local.runner" in again
    assert "exo.compiler.optimizer" not in again
    assert not [name for name in again if name.startswith("scipy.special")]
    assert "exo.compiler.simsteps" in again  # the fallback read the plan's steps
    assert not [name for name in again if name.split(".")[0] == "numpy"]
