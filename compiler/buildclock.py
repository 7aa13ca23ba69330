"""Whether the next steps' spot options fit in the time limit, while the options are built.

Building the options cannot stop half-way: every plan needs an option for each
step, and no search starts before they exist. At 10,000 steps the build is
about 8-10 CPU s, which a loaded machine can stretch past a whole 60 s limit.
The on-demand options are the cheaper half (no preemption quantiles, fewer
rows), so the options are built in batches of steps
(:data:`~exo.compiler.costmodel.STEPS_AT_ONCE`) and, before each, a
:class:`SpotGate` says whether that batch's spot options still fit: the batch
at the measured speed of a whole batch, the batches after it on demand only,
and what follows the options (pruning, the first schedules), expected to cost
:data:`AFTER_PER_BUILD` times a whole build. A batch that does not fit is built
on demand only; its spot options get a lower bound each
(:attr:`~exo.compiler.problem.Enumeration.unbuilt`), which the plan's proven
bound then covers, so the gap it reports stays true.

Without a time limit, or with one the build fits in, every option is built as
before, so such plans do not change.
"""

from __future__ import annotations

import time

from exo.compiler.anytime import Clock

#: Seconds the work after the options is expected to take per second the whole build
#: takes at the speed measured: what cannot look at the clock (the bound reductions and
#: the first schedule, ``optimizer.TAIL_PER_BUILD`` = 0.5, the plan's figures, 0.1) and
#: a little pruning and improvement, which stop when the time left holds no more than
#: that. (1.2 while pruning ran until the limit and the reductions after it: 10,000
#: steps at load 15-19 then ran -1 to +8 % of a 60 s limit.)
AFTER_PER_BUILD = 0.8
#: Seconds per step of a batch built on demand only, as a share of a whole batch's,
#: until one is measured (10,000 steps: 6.3 against 9.2 CPU s for the whole build).
LEAN_SHARE = 0.7


class SpotGate:
    """Asked before each batch of steps (first step, size): build its spot options?

    Times the batches between calls (the build runs between them), so its
    estimates follow the machine's load; a stop request (Ctrl-C) builds the rest
    on demand only, like a limit that has run out.
    """

    def __init__(self, clock: Clock, steps: int) -> None:
        self.clock = clock
        self.steps = steps
        self._since = time.perf_counter()
        self._open: tuple[bool, int] | None = None
        # seconds and steps of the batches built whole, and on demand only
        self._whole = [0.0, 0]
        self._lean = [0.0, 0]

    def __call__(self, first: int, size: int) -> bool:
        now = time.perf_counter()
        if self._open is not None:
            whole, n = self._open
            spent = self._whole if whole else self._lean
            spent[0] += now - self._since
            spent[1] += n
        build = self._decide(first, size)
        self._since, self._open = time.perf_counter(), (build, size)
        return build

    def _decide(self, first: int, size: int) -> bool:
        if self.clock.stopped():
            return False
        left = self.clock.remaining()
        if left is None or not self._whole[1]:
            return True  # no limit, or nothing measured yet: the first batch is built whole
        whole = self._whole[0] / self._whole[1]
        lean = self._lean[0] / self._lean[1] if self._lean[1] else LEAN_SHARE * whole
        rest = self.steps - first - size
        need = whole * size + lean * rest + AFTER_PER_BUILD * whole * self.steps
        return need <= left
