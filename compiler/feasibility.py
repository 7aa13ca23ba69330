""" "A plan by the horizon?": the time-indexed model and the split search, raced on two cores.

The descent of :mod:`exo.compiler.exact` asks, one period at a time, whether
any plan ends by a horizon; when the narrowing of :mod:`exo.compiler.windows`
leaves the windows open, two methods can answer: the time-indexed model
(HiGHS, which refutes some questions in seconds where the search is slow) and
the split search of :mod:`exo.compiler.splitting` (which refutes others, such
as PSPLIB ``j2029_9`` at 38, that HiGHS does not refute in minutes).

- **Two cores or more** (:func:`race.usable_cores`): both at once: the split
  search in a forked child process (:class:`race.Rival`, one core) with the
  question's whole time limit, HiGHS in this process with
  :data:`RACE_MODEL_SHARE` of it (then this process waits, and the search has
  the session's CPU). A refutation from either is the answer (a proof either
  way) and the other is stopped at once: HiGHS through its interrupt callback,
  the child killed. A plan from HiGHS is the answer and the child is killed; a
  plan from the search is kept while HiGHS goes on, and is the answer only if
  HiGHS ends without one (its share, the clock, Ctrl-C). So the plan handed
  back does not depend on which finished first: HiGHS' where it finds one in
  its share (as in turn, where HiGHS found the plans in its first slice), else
  the search's (depth first: deterministic). A question asked again whose
  model already ran longer unanswered leaves the model out (:func:`_model_had`).
  When the time is up or the caller stops, the child
  is asked to stop and its frontier kept (:attr:`windows.Known.splits`), so a
  question asked again goes on from where the search stopped, as in turn.
- **One core** (affinity): in turn, as before: the model first for
  :data:`FIRST_SHARE` of the time, then the search with the rest; a question
  asked again (its frontier kept) goes straight on with the search.

The child is forked after narrowing, so it starts with the rules and windows
built here; what it changes in the problem's narrowings is copied back from its
answer (the frontier and, when it refuted the question, "no plan").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from exo.compiler.highs import Watch, share_of
from exo.compiler.problem import Problem
from exo.compiler.quotarows import scaled_quotas
from exo.compiler.race import Rival, RivalFailed, usable_cores
from exo.compiler.splitting import Frontier, Searched, ask
from exo.compiler.windows import Known, Narrowed, Rules, Windows, narrowing

R = TypeVar("R")

#: Most of a question's time limit spent narrowing its windows
#: before the model (the model gets the rest and what shaving left unused).
SHAVE_SHARE = 0.5
#: In turn (one core): of the time a question has left after narrowing, what the
#: model gets before the split search: the questions HiGHS answers in a second or
#: two (PSPLIB ``j1829_9`` at 35: 2.4 CPU s, the search 8.7) stay as fast.
FIRST_SHARE = 0.2
#: Raced: of a question's time, what the model (in this process) gets; the child's
#: search has all of it. Two processes of one session share its CPU where others
#: work too (the kernel's autogroup): on PSPLIB ``j2061_7`` at 37, HiGHS never
#: answers and, running the whole question, left the search 9.6 CPU s of 22 s
#: (load 2); stopped after a quarter, 18.9 CPU s, and the run was proven in 50 s
#: (docs/benchmarks.md). The model answers the questions it refutes quickly in its
#: first seconds (``j1829_9`` at 35: 2.4 CPU s).
RACE_MODEL_SHARE = 0.25
#: Seconds a stopped search gets to send its frontier back before it is killed
#: (it looks at its stop signal between shaving probes: milliseconds).
STOP_GRACE_S = 0.5

#: What the child sends back: its answer, and what it recorded for the horizon.
_Sent = tuple[Searched, Frontier | None, Narrowed | None]


#: The problems whose narrowings are kept (:func:`known_of`), most recent last.
_KNOWN: OrderedDict[int, tuple[Problem, float, Known]] = OrderedDict()
#: How many problems' narrowings are kept (a plan solves one problem at a time).
KNOWN_PROBLEMS = 4
#: Largest problem whose narrowings are kept: the descent's (:data:`exact.SMALL_STEPS`,
#: where questions are asked again); a larger one would be kept alive past its solve.
KNOWN_STEPS = 30


def known_of(problem: Problem, delta: float, remember: bool = True) -> Known:
    """The narrowings of this problem object's questions so far on the grid of
    ``delta`` (:class:`windows.Known`); a fresh one when not ``remember`` or when the
    problem is larger than :data:`KNOWN_STEPS`.

    Kept by the object's identity (with a reference, so the identity is not
    reused while kept): the stages and resume rounds of one solve share the
    problem object, and another solve, even of an equal problem, starts afresh,
    so a plan never depends on what the process planned before.
    """
    if not remember or problem.size > KNOWN_STEPS:
        return Known()
    got = _KNOWN.get(id(problem))
    if got is not None and got[0] is problem and got[1] == delta:
        _KNOWN.move_to_end(id(problem))
        return got[2]
    known = Known()
    _KNOWN[id(problem)] = (problem, delta, known)
    _KNOWN.move_to_end(id(problem))
    while len(_KNOWN) > KNOWN_PROBLEMS:
        _KNOWN.popitem(last=False)
    return known


def narrowed(
    problem: Problem,
    periods: Sequence[Sequence[int]],
    delta: float,
    horizon: int,
    time_limit_s: float | None,
    watch: Watch | None,
    remember: bool,
) -> tuple[Windows | None, float | None]:
    """The windows of every plan within the horizon on the grid of ``periods``
    (:mod:`exo.compiler.windows`; ``None``: no plan fits), and the time limit left
    after narrowing them.

    Shaving stops when the watch says so or at :data:`SHAVE_SHARE` of the time
    limit (the windows narrowed by then hold). With ``remember``, what an earlier
    question of the same problem narrowed is the start (:func:`known_of`).
    """
    known = known_of(problem, delta, remember)
    answer = known.answer(horizon)
    if answer is not None:
        return answer.windows, time_limit_s
    t0 = time.perf_counter()
    stopped = share_of(watch, time_limit_s, SHAVE_SHARE)

    use, limits = scaled_quotas(problem)
    got = narrowing(
        periods,
        problem.preds,
        problem.successors(),
        use,
        limits,
        horizon,
        stopped=stopped,
        start=known.start(horizon),
    )
    known.put(horizon, got)
    if time_limit_s is not None:
        time_limit_s = max(time_limit_s - (time.perf_counter() - t0), 0.0)
    return got.windows, time_limit_s


def decide(
    rules: Rules,
    windows: Windows,
    known: Known,
    time_limit_s: float | None,
    watch: Watch | None,
    model: Callable[[float | None, Watch | None], R],
    answered: Callable[[R], bool],
) -> R | Searched:
    """The answer to "a plan by ``rules.horizon``?" on open, narrowed ``windows``.

    ``model(limit, watch)`` runs the time-indexed model (``answered``: whether its
    result says plan or no plan). A :class:`Searched` is the search's answer
    (``none``, ``plan`` or ``stopped``: the time was up); otherwise the model's.
    """
    q = _Question(rules, windows, known, time_limit_s, watch, model, answered)
    if usable_cores() >= 2:
        return _race(q)
    return _in_turn(q)


@dataclass(frozen=True, slots=True)
class _Question(Generic[R]):
    """One question's arguments to :func:`decide`."""

    rules: Rules
    windows: Windows
    known: Known
    time_limit_s: float | None
    watch: Watch | None
    model: Callable[[float | None, Watch | None], R]
    answered: Callable[[R], bool]


def _in_turn(q: _Question[R]) -> R | Searched:
    """The model for :data:`FIRST_SHARE` of the time, then the search (one core)."""
    limit = q.time_limit_s
    if limit is not None and q.rules.horizon not in q.known.splits:
        t0 = time.perf_counter()
        got = q.model(FIRST_SHARE * limit, q.watch)
        if q.answered(got):
            return got
        limit = max(limit - (time.perf_counter() - t0), 0.0)
    searched, limit = ask(q.rules, q.windows, q.known, limit, q.watch)
    if searched.outcome != "leaf":
        return searched
    return q.model(limit, q.watch)


def _race(q: _Question[R]) -> R | Searched:
    """The search in a child process, the model here, at once (see the module's text)."""
    end = None if q.time_limit_s is None else time.perf_counter() + q.time_limit_s
    horizon, known = q.rules.horizon, q.known

    def search(stopped: Callable[[], bool]) -> _Sent:
        got, _ = ask(q.rules, q.windows, known, q.time_limit_s, Watch(stopped=stopped))
        return got, known.splits.get(horizon), known.by_horizon.get(horizon)

    def caller_stopped() -> bool:
        return q.watch is not None and q.watch.stopped()

    rival: Rival[_Sent] = Rival(search)
    got: R | None = None
    try:

        def model_stopped() -> bool:
            if caller_stopped() or (end is not None and time.perf_counter() >= end):
                return True
            sent = rival.answer()
            return sent is not None and sent[0][0].outcome == "none"

        if not _model_had(q):
            progress = None if q.watch is None else q.watch.progress
            t0 = time.perf_counter()
            limit = None if q.time_limit_s is None else RACE_MODEL_SHARE * q.time_limit_s
            got = q.model(limit, Watch(stopped=model_stopped, progress=progress))
            if q.answered(got):
                return got  # HiGHS' plan, or its proof that none exists
            if not caller_stopped():
                ran = time.perf_counter() - t0
                known.model_s[horizon] = max(known.model_s.get(horizon, 0.0), ran)
        sent = rival.answer() or rival.wait(end, caller_stopped) or rival.stop(STOP_GRACE_S)
    finally:
        rival.kill()
    if rival.error is not None:
        raise RivalFailed(rival.error)
    if sent is not None:
        searched, frontier, narrowed = sent[0]
        if frontier is not None:
            known.splits[horizon] = frontier
        if narrowed is not None:
            known.put(horizon, narrowed)
        if searched.outcome != "leaf":
            return searched
    # the child died without an answer or left a leaf: the model has what is left
    left = None if end is None else max(end - time.perf_counter(), 0.0)
    if got is None or (left is not None and left > 0.0 and not caller_stopped()):
        return q.model(left, q.watch)
    return got  # the model's (unknown)


def _model_had(q: _Question[R]) -> bool:
    """Whether the model already ran at this horizon without an answer (a resume round)
    for at least the time it would get now (:data:`RACE_MODEL_SHARE` of the question):
    HiGHS' search is deterministic and starts afresh, so with no more time it would
    repeat that run. The search in the child, which goes on from its frontier, then
    has the whole question to itself (as in turn, where a question asked again goes
    straight on with the search). Before, the question's whole time was compared
    with the model's quarter: a resume round ran HiGHS again (PSPLIB ``j2061_7``:
    ~1 of a round's 6.4 CPU s at load 8; docs/benchmarks.md)."""
    had = q.known.model_s.get(q.rules.horizon)
    limit = q.time_limit_s
    return had is not None and limit is not None and RACE_MODEL_SHARE * limit <= had
