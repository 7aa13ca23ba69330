"""How runtime placeholders get their values inside a pod, without a shell parsing user text.

An Indexed Job tells each pod only its completion index. The shard range, the
attempt number and the other runtime placeholders are derived inside the pod:

* Values that are fixed for a pod (run id, step, input, output, shard index,
  shard count, checkpoint folder) are environment variables. ``EXO_RUN_ID``
  and ``EXO_BATCH_INDEX`` come from the downward API (the pod's run label and
  the Job controller's completion-index annotation); ``EXO_INPUT``,
  ``EXO_OUTPUT`` and ``EXO_CHECKPOINT`` refer to them with Kubernetes' own
  ``$(VAR)`` expansion of environment values.
* Values that need arithmetic (``batch_start``, ``batch_end``, ``batch_size``
  when it varies by shard, ``attempt``) are computed by :data:`SCRIPT`, a
  fixed POSIX-shell entrypoint that is the same for every step. It computes
  and exports ``EXO_BATCH_*`` / ``EXO_SHARD_*`` / ``EXO_ATTEMPT``, creates the
  checkpoint folder, fills the placeholders in its arguments, runs the step's
  command, and removes the checkpoint folder once the command has succeeded.

The step's command is passed to the script as positional arguments, so the
shell never parses it: placeholders are replaced by plain string operations
(``${t%%"$p"*}``; quoted patterns match literally), in one left-to-right pass
that never rescans an inserted value — the same contract as
:func:`exo.backends.api.expand`. Placeholders are written ``{name}`` in the
manifest, like in the ``.exo`` file, unless a literal ``{`` occurs in the
command; then a longer opener (``{exo:``) that occurs nowhere is chosen and
passed in ``EXO_PLACEHOLDER``.

Kubernetes expands ``$(VAR)`` in ``command``, ``args`` and ``env`` values, and
reduces ``$$`` to ``$``. :func:`kubelet_escape` protects literal text from
that expansion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..api import ENVIRONMENT

#: Same grammar as :func:`exo.backends.api.expand`.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: ``$0`` of the entrypoint script (shows in ``ps`` and in shell error messages).
SCRIPT_NAME = "exo-shard"

#: Runtime placeholder -> the environment variable the entrypoint reads it from.
ENV_OF: dict[str, str] = dict(ENVIRONMENT)

#: Placeholders only the entrypoint can compute (``batch_size`` too, when not planned).
COMPUTED = frozenset({"batch_start", "batch_end", "shard_start", "shard_end", "attempt"})

# The entrypoint. Inputs (environment): EXO_BATCH_INDEX, EXO_ITEMS, EXO_SHARD_COUNT,
# EXO_BATCH_SIZE (absent when a shard is one micro-batch), EXO_CHECKPOINT,
# EXO_PUBLISH (where a shard's staged EXO_OUTPUT is renamed to when it succeeds),
# EXO_FAILED_ATTEMPTS / EXO_PREEMPTED_ATTEMPTS (the Job controller's per-index
# failure counters), EXO_PLACEHOLDER, and the fixed EXO_* values. The shard
# range is the one exo.backends.api.shard_range computes. The command runs as a
# child (TERM is passed on to it) so that, once it succeeds, the shard's output
# can be published (one rename) and its checkpoint folder removed.
SCRIPT = """\
set -eu
i=${EXO_BATCH_INDEX:-${JOB_COMPLETION_INDEX:-0}}
w=$EXO_ITEMS
c=$EXO_SHARD_COUNT
s=$((w * i / c)); e=$((w * (i + 1) / c))
z=${EXO_BATCH_SIZE:-$((e - s))}
a=$((1 + ${EXO_FAILED_ATTEMPTS:-0} + ${EXO_PREEMPTED_ATTEMPTS:-0}))
export EXO_BATCH_INDEX="$i" EXO_BATCH_START="$s" EXO_BATCH_END="$e" EXO_BATCH_SIZE="$z" \\
  EXO_SHARD_INDEX="$i" EXO_SHARD_START="$s" EXO_SHARD_END="$e" EXO_ATTEMPT="$a"
k=${EXO_CHECKPOINT:-}
case $k in /*) mkdir -p -- "$k" ;; esac
f=${EXO_PUBLISH:-}
if [ -n "$f" ]; then rm -rf -- "$EXO_OUTPUT"; mkdir -p -- "$EXO_OUTPUT"; fi
p=$EXO_PLACEHOLDER
fill() {
  R=; t=$1
  while :; do
    case $t in *"$p"*) ;; *) R=$R$t; return 0 ;; esac
    R=$R${t%%"$p"*}; t=${t#*"$p"}
    m=; case $t in *"}"*) m=${t%%"}"*} ;; esac
    case $m in
      batch_index|shard_index) v=$EXO_BATCH_INDEX ;;
      batch_start|shard_start) v=$EXO_BATCH_START ;;
      batch_end|shard_end) v=$EXO_BATCH_END ;; batch_size) v=$EXO_BATCH_SIZE ;;
      shard_count) v=$EXO_SHARD_COUNT ;; checkpoint) v=$EXO_CHECKPOINT ;;
      attempt) v=$EXO_ATTEMPT ;; run_id) v=$EXO_RUN_ID ;; step) v=$EXO_STEP ;;
      input) v=$EXO_INPUT ;; output) v=$EXO_OUTPUT ;;
      *) R=$R$p; continue ;;
    esac
    R=$R$v; t=${t#*"}"}
  done
}
n=$#
while [ "$n" -gt 0 ]; do fill "$1"; shift; set -- "$@" "$R"; n=$((n - 1)); done
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || :' TERM INT
while :; do
  r=0; wait "$child" || r=$?
  kill -0 "$child" 2>/dev/null || break
done
if [ "$r" -eq 0 ] && [ -n "$f" ]; then
  rm -rf -- "$f"; mv -- "$EXO_OUTPUT" "$f" || r=$?
fi
if [ "$r" -eq 0 ]; then case $k in /*) rm -rf -- "$k" ;; esac; fi
exit "$r"
"""


@dataclass(frozen=True, slots=True)
class Literal:
    text: str


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str


Token = Literal | Placeholder


def tokens(template: str) -> list[Token]:
    """Split an IR string into literal text and runtime placeholders.

    ``{{``/``}}`` become literal braces; ``{name}`` for a name that is not a
    runtime placeholder stays literal text, exactly as :func:`api.expand` does.
    """
    out: list[Token] = []
    buf: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(template):
        buf.append(template[pos : m.start()])
        whole, name = m.group(0), m.group(1)
        if whole == "{{":
            buf.append("{")
        elif whole == "}}":
            buf.append("}")
        elif name in ENV_OF:
            text = "".join(buf)
            if text:
                out.append(Literal(text))
            buf = []
            out.append(Placeholder(name))
        else:
            buf.append(whole)
        pos = m.end()
    buf.append(template[pos:])
    text = "".join(buf)
    if text:
        out.append(Literal(text))
    return out


def fill(template: str, fixed: Mapping[str, str]) -> str:
    """An IR string with the ``fixed`` placeholders filled in; the others are kept."""
    parts: list[str] = []
    for t in tokens(template):
        if isinstance(t, Literal):
            parts.append(t.text.replace("{", "{{").replace("}", "}}"))
        elif t.name in fixed:
            parts.append(fixed[t.name].replace("{", "{{").replace("}", "}}"))
        else:
            parts.append(f"{{{t.name}}}")
    return "".join(parts)


def used_placeholders(templates: Sequence[str]) -> set[str]:
    return {t.name for s in templates for t in tokens(s) if isinstance(t, Placeholder)}


_KUBELET_SPECIAL = re.compile(r"\$(?=[$(])")


def kubelet_escape(text: str) -> str:
    """Protect literal text from ``$(VAR)`` expansion: Kubernetes reads ``$$`` as ``$``.

    Only a ``$`` followed by ``$`` or ``(`` means something to the kubelet, so
    only those are doubled; any other ``$`` passes through unchanged.
    """
    return _KUBELET_SPECIAL.sub("$$", text)


def choose_opener(templates: Sequence[str]) -> str:
    """The placeholder opener: ``{`` unless a literal ``{`` occurs in the command."""
    literal = "".join(t.text for s in templates for t in tokens(s) if isinstance(t, Literal))
    if "{" not in literal:
        return "{"
    n = 0
    while True:
        opener = "{exo:" if n == 0 else f"{{exo{n}:"
        if opener not in literal:
            return opener
        n += 1


def script_argument(template: str, opener: str) -> str:
    """One command argument as the entrypoint receives it (before kubelet escaping)."""
    parts: list[str] = []
    for t in tokens(template):
        parts.append(t.text if isinstance(t, Literal) else f"{opener}{t.name}}}")
    return "".join(parts)


def container_command(shell: str, command: Sequence[str]) -> tuple[list[str], list[str], str]:
    """``(command, args, opener)`` of a step container that runs ``command`` through the entrypoint."""
    opener = choose_opener(command)
    args = [kubelet_escape(script_argument(a, opener)) for a in command]
    return [shell, "-c", kubelet_escape(SCRIPT), SCRIPT_NAME], args, opener


def env_value(template: str, fixed: Mapping[str, str]) -> str:
    """An environment value: literal text escaped, placeholders as ``$(EXO_...)`` references.

    ``fixed`` maps placeholders known when the manifest is written to their
    values (inserted literally). Callers must have rejected :data:`COMPUTED`
    placeholders, which no environment variable can hold before the entrypoint runs.
    """
    parts: list[str] = []
    for t in tokens(template):
        if isinstance(t, Literal):
            parts.append(kubelet_escape(t.text))
        elif t.name in fixed:
            parts.append(kubelet_escape(fixed[t.name]))
        else:
            parts.append(f"$({ENV_OF[t.name]})")
    return "".join(parts)
