"""Reading ``step`` attributes and the step rules (DESIGN §2 step attributes).

Each reader takes the :class:`Reading` of its step, the attribute as written and
the IR fields read so far (in the order of the attribute table,
:data:`exo.compiler.attributes.STEP_ATTRIBUTES`), and returns the IR value or
``None`` after reporting why. :func:`performance_rules` checks what holds
between attributes once all are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exo.compiler import limits as L
from exo.compiler import values as V
from exo.compiler.diagnostics import DiagnosticSink, Span, did_you_mean, excerpt
from exo.compiler.ir import Checkpoint, Duration, InputRef, ReplicaRange, Throughput
from exo.compiler.names import (
    ENV_NAME_RULE,
    IMAGE_RULE,
    MAX_DESCRIPTION,
    description_problem,
    env_name_problem,
    image_problem,
)
from exo.compiler.reading import Reading
from exo.compiler.scopes import kind_of
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

Got = Mapping[str, Any]


def read_input(r: Reading, e: Entry, got: Got) -> InputRef | None:
    ref = _reference(r, r.value(e), "input", ("dataset", "step"))
    return InputRef(kind=ref[0], name=ref[1]) if ref is not None else None


def read_after(r: Reading, e: Entry, got: Got) -> tuple[str, ...]:
    after: list[str] = []
    for it in V.items_of(r.sink, "after", r.value(e)) or ():
        ref = _reference(r, r.deref(it), "after", ("step",))
        if ref is not None and ref[1] not in after:
            after.append(ref[1])
            r.mark(it.span, "after", ref[1])
    return tuple(after)


def read_output(r: Reading, e: Entry, got: Got) -> str | None:
    s = V.string(r.sink, "output", r.value(e))
    return r.path_text("output", s) if s else None


def read_image(r: Reading, e: Entry, got: Got) -> str | None:
    s = V.string(r.sink, "image", r.value(e))
    return _image(r.sink, s, r.template(s)) if s else None


def read_command(r: Reading, e: Entry, got: Got) -> tuple[str, ...] | None:
    lst = V.string_list(r.sink, "command", r.value(e))
    if lst is None:
        return None
    if not lst:
        r.sink.error("E202", "'command' is empty", r.value(e).span)
    return tuple([r.template(s) for s in lst])


def read_secrets(r: Reading, e: Entry, got: Got) -> tuple[str, ...] | None:
    lst = V.string_list(r.sink, "secrets", r.value(e))
    if lst is None:
        return None
    ok = [s for s in lst if env_name_ok(r.sink, "secret", s.text, s.span)]
    for s in ok:
        if s.text in (got.get("env") or {}):
            r.sink.error(
                "E207",
                f"'{s.text}' is both a secret and an `env` entry",
                s.span,
                help=["to fix: keep one of them; a secret's value comes from the runner"],
            )
    return tuple(dict.fromkeys(s.text for s in ok))


def read_accelerators(r: Reading, e: Entry, got: Got) -> tuple[str, ...] | None:
    names = V.name_list(r.sink, "accelerators", r.value(e))
    if names is None:
        return None
    if not names:
        r.sink.error(
            "E202",
            "'accelerators' is empty",
            r.value(e).span,
            help=["to fix: remove it for a CPU-only step, or list accelerator types"],
        )
    for n, v in names:
        r.mark(v.span, "accelerators", n)
    return tuple(dict.fromkeys(n for n, _ in names))


def read_gpus(r: Reading, e: Entry, got: Got) -> int | None:
    g = V.integer(r.sink, "gpus", r.value(e), limit=L.GPUS)
    if g is not None and "accelerators" not in got:
        r.sink.error(
            "E201",
            "'gpus' is set but the step lists no accelerators",
            e.key_span,
            help=["to fix: add accelerators = [A100, ...] or remove gpus"],
        )
    return g


def default_gpus(got: Got) -> int | None:
    """One device per replica on a step that lists accelerators and does not say."""
    return 1 if got.get("accelerators") else None


def read_batch_sizes(r: Reading, e: Entry, got: Got) -> tuple[int, ...] | None:
    bs = V.int_list(r.sink, "batch_sizes", r.value(e), limit=L.BATCH_SIZE)
    if bs is None:
        return None
    _check_batches(r.sink, bs, got.get("throughput"))
    return tuple(dict.fromkeys(b for b, _ in bs))


def read_replicas(r: Reading, e: Entry, got: Got) -> ReplicaRange | None:
    rv = r.value(e)
    if isinstance(rv, RangeV):  # bounds may name params: replicas = 1..max_replicas
        rv = RangeV(rv.span, _bound(r, rv.low), _bound(r, rv.high))
    rr = V.int_range(r.sink, "replicas", rv, limit=L.REPLICAS)
    return ReplicaRange(min=rr[0], max=rr[1]) if rr is not None else None


def read_checkpoint(r: Reading, e: Entry, got: Got) -> Checkpoint | None:
    v = r.value(e)
    if isinstance(v, DurationLit):
        h = V.duration_h(r.sink, "checkpoint", v, limit=L.DURATION_H)
        return Checkpoint(kind="interval", interval_h=h) if h is not None else None
    if isinstance(v, Ref) and v.name in ("batch", "none"):
        return Checkpoint(kind=v.name)
    r.sink.error(
        "E204",
        f"'checkpoint' must be batch, none or a duration such as 30m (got {_shown(v)})",
        v.span,
        help=did_you_mean(v.name, ("batch", "none")) if isinstance(v, Ref) else [],
    )
    return None


def read_description(r: Reading, e: Entry, got: Got) -> str | None:
    """One line of text; params may be placed in it (``"Summarise {corpus}"``)."""
    s = V.string(r.sink, "description", r.value(e))
    if s is None:
        return None
    text = r.template(s, runtime=False).replace("{{", "{").replace("}}", "}")
    problem = description_problem(text)
    if problem is None:
        return text
    r.sink.error(
        "E211",
        f"'description' \"{excerpt(text)}\" is not allowed: {problem}",
        s.span,
        help=[
            f"to fix: say what the step does in one line of at most {MAX_DESCRIPTION} characters"
        ],
    )
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


def _bound(r: Reading, v: Num | Ref) -> Num | Ref:
    d = r.deref(v)
    if isinstance(d, Num | Ref):
        return d
    return Ref(v.span, describe(d))


def _reference(r: Reading, v: Value, attr: str, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    if not isinstance(v, Ref):
        want = " or ".join(f"a {k}" for k in kinds)
        r.sink.error("E201", f"type error: '{attr}' expects the name of {want}", v.span)
        return None
    found = r.resolve(v.name)
    if found is None:
        r.sink.error(
            "E101",
            f"unknown name '{v.name}'",
            v.span,
            help=did_you_mean(v.name, r.visible_names(kinds), quote="'"),
        )
        return None
    kind = kind_of(found.target)
    if kind not in kinds:
        want = " or ".join(f"a {k}" for k in kinds)
        r.sink.error(
            "E114",
            f"'{v.name}' is a {kind}, but '{attr}' expects {want}",
            v.span,
        )
        return None
    return kind, found.qualified


def read_env(r: Reading, e: Entry, got: Got) -> dict[str, str]:
    assert isinstance(e, Block)
    out: dict[str, str] = {}
    for sub in e.entries:
        if not isinstance(sub, Attr):
            r.sink.error("E201", 'type error: env entries are NAME = "value"', sub.key_span)
            continue
        if sub.key in out:
            r.sink.error("E103", f"duplicate env variable '{excerpt(sub.key)}'", sub.key_span)
            continue
        if not env_name_ok(r.sink, "env", sub.key, sub.key_span):
            continue
        v = r.deref(sub.value)
        if isinstance(v, Num):
            v = Str(v.span, (str(v.value),))
        s = V.string(r.sink, f"env {sub.key}", v)
        if s is not None:
            out[sub.key] = r.template(s)
    return dict(sorted(out.items()))


def read_throughput(r: Reading, e: Entry, got: Got) -> Throughput | None:
    sink = r.sink
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
        r.mark(sub.key_span, "perf", sub.key)
        v = r.deref(sub.value)
        if isinstance(v, MapV):
            per_batch[sub.key] = _rate_table(r, sub.key, v)
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


def _rate_table(r: Reading, key: str, v: MapV) -> dict[int, float]:
    """``{ 8: 1.2, 16: 2.0 }``: items per second by batch size, sorted by batch size."""
    sink = r.sink
    table: dict[int, float] = {}
    what = f"throughput of {key}"
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
        value = entry.value
        rate = V.number(
            sink, what, r.deref(value) if isinstance(value, Ref) else value, limit=L.THROUGHPUT
        )
        if b is not None and rate is not None:
            if b in table:
                sink.error("E103", f"batch size {b} given twice for {key}", entry.key.span)
            table[b] = rate
    if not v.entries:
        sink.error("E202", f"throughput for {key} is empty", v.span)
    return dict(sorted(table.items()))


def read_duration(r: Reading, e: Entry, got: Got) -> Duration | None:
    if isinstance(e, Attr):
        h = V.duration_h(r.sink, "duration", r.deref(e.value), limit=L.DURATION_H)
        return Duration(default_h=h) if h is not None else None
    per_key: dict[str, float] = {}
    for sub in e.entries:
        if not isinstance(sub, Attr):
            r.sink.error("E201", "type error: duration entries are KEY = 2h", sub.key_span)
            continue
        if sub.key in per_key:
            r.sink.error("E103", f"duplicate duration for '{sub.key}'", sub.key_span)
            continue
        r.mark(sub.key_span, "perf", sub.key)
        h = V.duration_h(r.sink, f"duration of {sub.key}", r.deref(sub.value), limit=L.DURATION_H)
        if h is not None:
            per_key[sub.key] = h
    if not e.entries:
        r.sink.error("E202", "'duration' is empty", e.key_span)
        return None
    return Duration(per_key=per_key)


def _shown(v: Value) -> str:
    if isinstance(v, Ref):
        return f"'{v.name}'"
    return getattr(v, "text", "a value") if not isinstance(v, Str) else f'"{v.text}"'


def _check_batches(
    sink: DiagnosticSink, bs: list[tuple[int, Value]], tp: Throughput | None
) -> None:
    if tp is None or not tp.per_batch:
        return
    for b, v in bs:
        if any(b in t for t in tp.per_batch.values()):
            continue
        keys = sorted(tp.per_batch)
        where = keys[0] if len(keys) == 1 else "any of " + ", ".join(keys)
        have = sorted({x for t in tp.per_batch.values() for x in t})
        sink.error(
            "E302",
            f"batch size {b} has no throughput for {where}",
            v.span,
            help=[
                f"measured batch sizes: {', '.join(map(str, have))}",
                f"to fix: add {b}: <items/s> to the throughput map, or remove {b} from batch_sizes",
            ],
        )


def performance_rules(r: Reading, decl: Decl, attrs: Mapping[str, Entry], got: Got) -> None:
    """What holds between a step's attributes: throughput or duration (E301, E305), what
    a duration step cannot have (E303), what checkpoint = batch needs (E304)."""
    sink = r.sink
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
    cp = got.get("checkpoint")
    tp = got.get("throughput")
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
