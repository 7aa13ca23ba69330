"""Deterministic text for Kubernetes objects: YAML files and Argo-safe embedded manifests."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import yaml
from kubernetes.client import ApiClient


@functools.cache
def _api_client() -> Any:
    # Only its model-to-JSON conversion is used: one client serves every object (building
    # one, with its configuration and connection pool, cost ~0.4 ms a Job).
    return ApiClient()


def to_dict(obj: object) -> dict[str, Any]:
    """A client model as the API server's JSON (camelCase keys, unset fields dropped)."""
    out = _api_client().sanitize_for_serialization(obj)
    if not isinstance(out, dict):
        raise TypeError(f"{type(obj).__name__} does not serialise to an object")
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the entrypoint script, embedded manifests) as literal blocks.

    PyYAML's pure-Python emitter: the reference text, the same on every machine."""


#: The libyaml versions whose emitter the property tests have held to the
#: pure-Python one (tests/test_kubernetes_serialize.py): another version is not
#: used until it is added here, which also makes those tests check it.
TRUSTED_LIBYAML = frozenset({(0, 2, 6)})

#: libyaml's emitter with the same representers, where PyYAML has libyaml.
_LibyamlDumper: type[yaml.CSafeDumper] | None = None
#: It, where its version is trusted: about 8x faster, and the same text for every
#: document that :func:`libyaml_writes_the_same` accepts. ``None``: every document
#: takes the pure-Python emitter.
_FastDumper: type[yaml.CSafeDumper] | None = None
if getattr(yaml, "__with_libyaml__", False):
    from yaml import _yaml

    class _CDumper(yaml.CSafeDumper):
        """libyaml's emitter, for the documents it writes as the reference does."""

    _LibyamlDumper = _CDumper
    if tuple(_yaml.get_version()) in TRUSTED_LIBYAML:
        _FastDumper = _CDumper


#: Characters YAML 1.1 reads as line breaks: in a plain, single-quoted or literal
#: scalar they are folded on load (a NEL in a command argument became a space).
_YAML_BREAKS = ("\x85", "\u2028", "\u2029", "\r")


def _str(dumper: yaml.representer.BaseRepresenter, data: str) -> yaml.ScalarNode:
    if any(c in data for c in _YAML_BREAKS):
        style: str | None = '"'  # double quotes escape them: \N, \L, \P, \r
    elif "\n" in data:
        style = "|"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)
if _LibyamlDumper is not None:
    _LibyamlDumper.add_representer(str, _str)


#: A character on which the emitters may disagree: anything but printable ASCII, tab,
#: newline and the printable BMP less the BOM. libyaml escapes characters beyond the
#: BMP, quotes keys with control characters differently and refuses lone surrogates.
_DISAGREES = re.compile(r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")


def _string_agrees(text: str) -> bool:
    # A text ending in two line breaks (or one alone) is a "|+" block: after one,
    # libyaml ends the document with "...", the reference does not.
    if text.endswith("\n\n") or text == "\n":
        return False
    return _DISAGREES.search(text) is None


def libyaml_writes_the_same(doc: object) -> bool:
    """Whether libyaml's emitter writes ``doc`` exactly as the pure-Python one does.

    True for JSON-like objects (dicts with non-empty string keys, holding lists,
    strings, numbers, booleans, ``None``) whose strings keep to the characters
    and endings on which the two emitters were found to agree; anything else
    (a document that is not a mapping, an empty key, a character beyond the
    BMP, a control character, a "|+" block, another type) takes the
    pure-Python emitter.
    """
    if not isinstance(doc, dict):
        return False  # a lone scalar: the reference ends the document with "..."
    stack: list[object] = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if not _string_agrees(x):
                return False
        elif isinstance(x, dict):
            for k, v in x.items():
                if not isinstance(k, str) or not k or not _string_agrees(k):
                    return False
                stack.append(v)
        elif isinstance(x, list):
            stack.extend(x)
        elif not (x is None or isinstance(x, int | float)):
            return False
    return True


def to_yaml(doc: object) -> str:
    """Sorted keys, block style, no line folding; the same text on every machine.

    libyaml's emitter where it writes what the pure-Python one would (about 8x
    faster on a Job), the pure-Python one elsewhere.
    """
    fast = _FastDumper is not None and libyaml_writes_the_same(doc)
    text: str = yaml.dump(
        doc,
        Dumper=_FastDumper if fast else _Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return text


_DOUBLE_BRACE = re.compile(r"\{(?=\{)")


def _json(doc: dict[str, Any]) -> str:
    # Argo substitutes {{...}} anywhere in a template, manifests included, and has
    # no escape for it; writing the first brace of every "{{" as a JSON escape
    # hides it from Argo, and kubectl decodes it back. Indented JSON puts a line
    # break after every "{" it writes, so a "{{" is always inside a string.
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
    return _DOUBLE_BRACE.sub(r"\\u007b", text)


def to_argo_manifest(doc: dict[str, Any], *, sentinel: str, replacement: str) -> str:
    """JSON for a resource template's ``manifest``: sorted keys, no ``{{`` in any
    string, then ``sentinel`` replaced by ``replacement`` (an Argo variable)."""
    return _json(doc).replace(sentinel, replacement) + "\n"
