"""Lowering and validating ``step`` declarations (DESIGN §2 step attributes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exo.compiler import limits as L
from exo.compiler import values as V
from exo.compiler.diagnostics import DiagnosticSink, Span, did_you_mean, excerpt
from exo.compiler.ir import Checkpoint, Duration, InputRef, ReplicaRange, Step, Throughput
from exo.compiler.lower import STEP_ATTRS, Lowerer, Scope, check_path
from exo.compiler.names import (
    ENV_NAME_RULE,
    IMAGE_RULE,
    MAX_QUALIFIED_NAME,
    decl_name_problem,
    env_name_problem,
    image_problem,
)
from exo.compiler.syntax import (
    Attr,
    Block,
    Decl,
    DurationLit,
    Entry,
    MapV,
    Num,
    RangeV,
    Ref,
    Str,
    Value,
    describe,
)


@dataclass
class StepRefs:
    """Spans kept for checks that need the whole program (graph, catalog)."""

    name_span: Span
    edges: list[tuple[str, Span]] = field(default_factory=list)
    accelerator_spans: dict[str, Span] = field(default_factory=dict)
    perf_key_spans: dict[str, Span] = field(default_factory=dict)
    input_span: Span | None = None
    misspelt: bool = False
    #: ``items`` is written (even when its value was refused): no "no item count".
    items_written: bool = False


def lower_step(lw: Lowerer, scope: Scope, decl: Decl) -> tuple[Step, StepRefs] | None:
    sink = lw.sink
    before = len(sink.items)
    attrs = lw.entries(decl, STEP_ATTRS, "step")
    name = scope.prefix + decl.name
    refs = StepRefs(decl.name_span)
    if scope.prefix and (problem := decl_name_problem(name, limit=MAX_QUALIFIED_NAME)):
        sink.error(
            "E208",
            f"the qualified name of step '{decl.name}' is too long: {problem}",
            decl.name_span,
            help=["to fix: import the module under a shorter name (import ... as NAME)"],
        )
    # A misspelt attribute makes later hardware checks guess wrong: skip them.
    refs.misspelt = any(d.code == "E104" for d in sink.items[before:])
    kw: dict[str, Any] = {"name": name, "loc": lw.loc(scope, decl.name_span)}

    def val(key: str) -> Value:
        return lw.value(scope, attrs[key])

    # data flow
    if "input" in attrs:
        v = val("input")
        r = _reference(lw, scope, v, "input", ("dataset", "step"))
        if r is not None:
            kind, qname = r
            kw["input"] = InputRef(kind=kind, name=qname)
            refs.input_span = v.span
            if kind == "step":
                refs.edges.append((qname, v.span))
    if "after" in attrs:
        items = V.items_of(sink, "after", val("after"))
        after: list[str] = []
        for it in items or ():
            r = _reference(lw, scope, lw.deref(scope, it), "after", ("step",))
            if r is not None and r[1] not in after:
                after.append(r[1])
                refs.edges.append((r[1], it.span))
        kw["after"] = tuple(after)
    if "items" in attrs:
        kw["items"] = V.integer(sink, "items", val("items"), limit=L.ITEMS)
        refs.items_written = True
    if "output" in attrs:
        s = V.string(sink, "output", val("output"))
        kw["output"] = check_path(lw, "output", s, lw.template(scope, s)) if s else None
    # execution
    if "image" in attrs:
        s = V.string(sink, "image", val("image"))
        kw["image"] = _image(sink, s, lw.template(scope, s)) if s else None
    if "command" in attrs:
        lst = V.string_list(sink, "command", val("command"))
        if lst is not None:
            if not lst:
                sink.error("E202", "'command' is empty", val("command").span)
            kw["command"] = tuple(lw.template(scope, s) for s in lst)
    if "env" in attrs:
        kw["env"] = _env(lw, scope, attrs["env"])
    if "secrets" in attrs:
        lst = V.string_list(sink, "secrets", val("secrets"))
        if lst is not None:
            ok = [s for s in lst if env_name_ok(sink, "secret", s.text, s.span)]
            for s in ok:
                if s.text in kw.get("env", {}):
                    sink.error(
                        "E207",
                        f"'{s.text}' is both a secret and an `env` entry",
                        s.span,
                        help=["to fix: keep one of them; a secret's value comes from the runner"],
                    )
            kw["secrets"] = tuple(dict.fromkeys(s.text for s in ok))
    # hardware
    if "accelerators" in attrs:
        names = V.name_list(sink, "accelerators", val("accelerators"))
        if names is not None:
            if not names:
                sink.error(
                    "E202",
                    "'accelerators' is empty",
                    val("accelerators").span,
                    help=["to fix: remove it for a CPU-only step, or list accelerator types"],
                )
            kw["accelerators"] = tuple(dict.fromkeys(n for n, _ in names))
            for n, v in names:
                refs.accelerator_spans.setdefault(n, v.span)
    has_accel = bool(kw.get("accelerators"))
    if "gpus" in attrs:
        g = V.integer(sink, "gpus", val("gpus"), limit=L.GPUS)
        if g is not None and not has_accel and "accelerators" not in attrs:
            sink.error(
                "E201",
                "'gpus' is set but the step lists no accelerators",
                attrs["gpus"].key_span,
                help=["to fix: add accelerators = [A100, ...] or remove gpus"],
            )
        kw["gpus"] = g
    elif has_accel:
        kw["gpus"] = 1
    if "cpu" in attrs:
        kw["cpu"] = V.integer(sink, "cpu", val("cpu"), limit=L.CPUS)
    if "memory" in attrs:
        kw["memory_gib"] = V.size_gib(sink, "memory", val("memory"), limit=L.SIZE_GIB)
    # performance model
    if "throughput" in attrs:
        kw["throughput"] = _throughput(lw, scope, attrs["throughput"], refs)
    if "duration" in attrs:
        kw["duration"] = _duration(lw, scope, attrs["duration"], refs)
    if "startup" in attrs:
        kw["startup_h"] = V.duration_h(
            sink, "startup", val("startup"), positive=False, limit=L.DURATION_H
        )
    # choices
    if "batch_sizes" in attrs:
        bs = V.int_list(sink, "batch_sizes", val("batch_sizes"), limit=L.BATCH_SIZE)
        if bs is not None:
            kw["batch_sizes"] = tuple(dict.fromkeys(b for b, _ in bs))
            _check_batches(lw, bs, kw.get("throughput"))
    if "replicas" in attrs:
        rv = val("replicas")
        if isinstance(rv, RangeV):  # bounds may name params: replicas = 1..max_replicas
            rv = RangeV(rv.span, _bound(lw, scope, rv.low), _bound(lw, scope, rv.high))
        rr = V.int_range(sink, "replicas", rv, limit=L.REPLICAS)
        if rr is not None:
            kw["replicas"] = ReplicaRange(min=rr[0], max=rr[1])
    if "model_memory" in attrs:
        kw["model_memory_gib"] = V.size_gib(
            sink, "model_memory", val("model_memory"), limit=L.SIZE_GIB
        )
    if "memory_per_item" in attrs:
        kw["memory_per_item_gib"] = V.size_gib(
            sink, "memory_per_item", val("memory_per_item"), limit=L.SIZE_GIB
        )
    # preemption and failure
    if "spot" in attrs:
        kw["spot"] = V.enum(sink, "spot", val("spot"), ("allowed", "never", "only"))
    if "checkpoint" in attrs:
        kw["checkpoint"] = _checkpoint(lw, val("checkpoint"))
    if "retries" in attrs:
        kw["retries"] = V.integer(sink, "retries", val("retries"), minimum=0, limit=L.RETRIES)
    if "preemption_retries" in attrs:
        kw["preemption_retries"] = V.integer(
            sink, "preemption_retries", val("preemption_retries"), minimum=0, limit=L.RETRIES
        )
    if "timeout" in attrs:
        kw["timeout_h"] = V.duration_h(sink, "timeout", val("timeout"), limit=L.DURATION_H)

    _performance_rules(lw, decl, attrs, kw)
    clean = {k: v for k, v in kw.items() if v is not None}
    if "throughput" in clean and "batch_sizes" not in clean:
        tp: Throughput = clean["throughput"]
        clean["batch_sizes"] = tuple(sorted({b for t in tp.per_batch.values() for b in t}))
    try:
        return Step(**clean), refs
    except ValueError:  # pragma: no cover - every field was validated above
        return None


def env_name_ok(sink: DiagnosticSink, what: str, name: str, span: Span) -> bool:
    """The one rule for ``env`` keys and ``secrets``, the same for every backend (E207)."""
    problem = env_name_problem(name)
    if problem is None:
        return True
    sink.error(
        "E207",
        f"{what} name '{excerpt(name)}' is not allowed: {problem}",
        span,
        help=[f"to fix: {ENV_NAME_RULE}, e.g. HF_TOKEN"],
    )
    return False


def _image(sink: DiagnosticSink, s: Str, text: str) -> str | None:
    problem = image_problem(text)
    if problem is None:
        return text
    sink.error(
        "E209",
        f"'image' \"{excerpt(text)}\" is not an image reference: {problem}",
        s.span,
        help=[f"to fix: {IMAGE_RULE}, e.g. vllm/vllm-openai:v0.6.3"],
    )
    return None


def _bound(lw: Lowerer, scope: Scope, v: Num | Ref) -> Num | Ref:
    d = lw.deref(scope, v)
    if isinstance(d, Num | Ref):
        return d
    return Ref(v.span, describe(d))


def _reference(
    lw: Lowerer, scope: Scope, v: Value, attr: str, kinds: tuple[str, ...]
) -> tuple[str, str] | None:
    if not isinstance(v, Ref):
        want = " or ".join(f"a {k}" for k in kinds)
        lw.sink.error("E201", f"type error: '{attr}' expects the name of {want}", v.span)
        return None
    r = lw.resolve(scope, v.name)
    if r is None:
        lw.sink.error(
            "E101",
            f"unknown name '{v.name}'",
            v.span,
            help=did_you_mean(v.name, lw.visible_names(scope, kinds), quote="'"),
        )
        return None
    kind = r.target.kind if isinstance(r.target, Decl) else "param"
    if kind not in kinds:
        want = " or ".join(f"a {k}" for k in kinds)
        lw.sink.error(
            "E114",
            f"'{v.name}' is a {kind}, but '{attr}' expects {want}",
            v.span,
        )
        return None
    return kind, r.qualified


def _env(lw: Lowerer, scope: Scope, e: Entry) -> dict[str, str]:
    assert isinstance(e, Block)
    out: dict[str, str] = {}
    for sub in e.entries:
        if not isinstance(sub, Attr):
            lw.sink.error("E201", 'type error: env entries are NAME = "value"', sub.key_span)
            continue
        if sub.key in out:
            lw.sink.error("E103", f"duplicate env variable '{excerpt(sub.key)}'", sub.key_span)
            continue
        if not env_name_ok(lw.sink, "env", sub.key, sub.key_span):
            continue
        v = lw.deref(scope, sub.value)
        if isinstance(v, Num):
            v = Str(v.span, (str(v.value),))
        s = V.string(lw.sink, f"env {sub.key}", v)
        if s is not None:
            out[sub.key] = lw.template(scope, s)
    return dict(sorted(out.items()))


def _throughput(lw: Lowerer, scope: Scope, e: Entry, refs: StepRefs) -> Throughput | None:
    sink = lw.sink
    if not isinstance(e, Block):
        sink.error(
            "E201",
            "type error: 'throughput' is a block: throughput { A100 = { 8: 1.2 } } or throughput { cpu = 400 }",
            e.key_span,
        )
        return None
    per_batch: dict[str, dict[int, float]] = {}
    flat: dict[str, float] = {}
    for sub in e.entries:
        if sub.key in per_batch or sub.key in flat:
            sink.error("E103", f"duplicate throughput for '{sub.key}'", sub.key_span)
            continue
        if not isinstance(sub, Attr):
            sink.error(
                "E201",
                f"type error: throughput for '{sub.key}' is written {sub.key} = {{ 8: 1.2 }}",
                sub.key_span,
            )
            continue
        refs.perf_key_spans.setdefault(sub.key, sub.key_span)
        v = lw.deref(scope, sub.value)
        if isinstance(v, MapV):
            table: dict[int, float] = {}
            for entry in v.entries:
                b = (
                    V.integer(sink, "batch size", entry.key, limit=L.BATCH_SIZE)
                    if isinstance(entry.key, Num)
                    else None
                )
                if not isinstance(entry.key, Num):
                    sink.error(
                        "E201",
                        "type error: throughput map keys are batch sizes (whole numbers)",
                        entry.key.span,
                    )
                rate = V.number(
                    sink,
                    f"throughput of {sub.key}",
                    lw.deref(scope, entry.value),
                    limit=L.THROUGHPUT,
                )
                if b is not None and rate is not None:
                    if b in table:
                        sink.error(
                            "E103", f"batch size {b} given twice for {sub.key}", entry.key.span
                        )
                    table[b] = rate
            if not v.entries:
                sink.error("E202", f"throughput for {sub.key} is empty", v.span)
            per_batch[sub.key] = dict(sorted(table.items()))
        else:
            rate = V.number(sink, f"throughput of {sub.key}", v, limit=L.THROUGHPUT)
            if rate is not None:
                flat[sub.key] = rate
    if not e.entries:
        sink.error("E202", "'throughput' is empty", e.key_span)
        return None
    if not per_batch and not flat:
        return None  # every entry was refused, and reported
    return Throughput(per_batch=per_batch, flat=flat)


def _duration(lw: Lowerer, scope: Scope, e: Entry, refs: StepRefs) -> Duration | None:
    if isinstance(e, Attr):
        h = V.duration_h(lw.sink, "duration", lw.deref(scope, e.value), limit=L.DURATION_H)
        return Duration(default_h=h) if h is not None else None
    per_key: dict[str, float] = {}
    for sub in e.entries:
        if not isinstance(sub, Attr):
            lw.sink.error("E201", "type error: duration entries are KEY = 2h", sub.key_span)
            continue
        if sub.key in per_key:
            lw.sink.error("E103", f"duplicate duration for '{sub.key}'", sub.key_span)
            continue
        refs.perf_key_spans.setdefault(sub.key, sub.key_span)
        h = V.duration_h(
            lw.sink, f"duration of {sub.key}", lw.deref(scope, sub.value), limit=L.DURATION_H
        )
        if h is not None:
            per_key[sub.key] = h
    if not e.entries:
        lw.sink.error("E202", "'duration' is empty", e.key_span)
        return None
    return Duration(per_key=per_key)


def _checkpoint(lw: Lowerer, v: Value) -> Checkpoint | None:
    if isinstance(v, DurationLit):
        h = V.duration_h(lw.sink, "checkpoint", v, limit=L.DURATION_H)
        return Checkpoint(kind="interval", interval_h=h) if h is not None else None
    if isinstance(v, Ref) and v.name in ("batch", "none"):
        return Checkpoint(kind=v.name)
    lw.sink.error(
        "E204",
        f"'checkpoint' must be batch, none or a duration such as 30m (got {_shown(v)})",
        v.span,
        help=did_you_mean(v.name, ("batch", "none")) if isinstance(v, Ref) else [],
    )
    return None


def _shown(v: Value) -> str:
    if isinstance(v, Ref):
        return f"'{v.name}'"
    return getattr(v, "text", "a value") if not isinstance(v, Str) else f'"{v.text}"'


def _check_batches(lw: Lowerer, bs: list[tuple[int, Value]], tp: Throughput | None) -> None:
    if tp is None or not tp.per_batch:
        return
    for b, v in bs:
        if any(b in t for t in tp.per_batch.values()):
            continue
        keys = sorted(tp.per_batch)
        where = keys[0] if len(keys) == 1 else "any of " + ", ".join(keys)
        have = sorted({x for t in tp.per_batch.values() for x in t})
        lw.sink.error(
            "E302",
            f"batch size {b} has no throughput for {where}",
            v.span,
            help=[
                f"measured batch sizes: {', '.join(map(str, have))}",
                f"to fix: add {b}: <items/s> to the throughput map, or remove {b} from batch_sizes",
            ],
        )


def _performance_rules(
    lw: Lowerer, decl: Decl, attrs: dict[str, Entry], kw: dict[str, Any]
) -> None:
    sink = lw.sink
    has_tp = "throughput" in attrs
    has_dur = "duration" in attrs
    if has_tp and has_dur:
        sink.error(
            "E305",
            f"step '{decl.name}' gives both throughput and duration",
            attrs["duration"].key_span,
            help=["to fix: keep throughput for work measured in items, duration for fixed work"],
        )
    elif not has_tp and not has_dur:
        sink.error(
            "E301",
            f"step '{decl.name}' has no throughput or duration, so its run time is unknown",
            decl.name_span,
            help=[
                "to fix: add throughput { A100 = { 32: 4.0 } } (items per second per replica) "
                "or duration = 30m",
            ],
        )
    if has_dur and not has_tp:
        for key in ("replicas", "batch_sizes"):
            if key in attrs:
                sink.error(
                    "E303",
                    f"'{key}' has no meaning for a duration step (it runs one replica, no batches)",
                    attrs[key].key_span,
                    help=["to fix: remove it, or describe the step by throughput instead"],
                )
    cp = kw.get("checkpoint")
    tp = kw.get("throughput")
    if isinstance(cp, Checkpoint) and cp.kind == "batch" and "checkpoint" in attrs:
        span = (
            attrs["checkpoint"].value.span
            if isinstance(attrs["checkpoint"], Attr)
            else attrs["checkpoint"].key_span
        )
        if not has_tp:
            sink.error(
                "E304",
                "checkpoint = batch needs a throughput step (a duration step has no batches)",
                span,
                help=["to fix: use an interval such as checkpoint = 30m, or none"],
            )
        elif isinstance(tp, Throughput) and not tp.per_batch:
            sink.error(
                "E304",
                "checkpoint = batch needs batch sizes, but this step's throughput does not depend on batch size",
                span,
                help=["to fix: use an interval such as checkpoint = 10m"],
            )
