"""Deterministic text for Kubernetes objects: YAML files and Argo-safe embedded manifests."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from kubernetes.client import ApiClient


def to_dict(obj: object) -> dict[str, Any]:
    """A client model as the API server's JSON (camelCase keys, unset fields dropped)."""
    client: Any = ApiClient()
    out = client.sanitize_for_serialization(obj)
    if not isinstance(out, dict):
        raise TypeError(f"{type(obj).__name__} does not serialise to an object")
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the entrypoint script, embedded manifests) as literal blocks.

    The pure-Python emitter, not libyaml's, so the text is the same on every machine."""


#: Characters YAML 1.1 reads as line breaks: in a plain, single-quoted or literal
#: scalar they are folded on load (a NEL in a command argument became a space).
_YAML_BREAKS = ("\x85", "\u2028", "\u2029", "\r")


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if any(c in data for c in _YAML_BREAKS):
        style: str | None = '"'  # double quotes escape them: \N, \L, \P, \r
    elif "\n" in data:
        style = "|"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(doc: object) -> str:
    """Sorted keys, block style, no line folding."""
    text: str = yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return text


def _json(value: Any, indent: int) -> str:
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{inner}{_string(str(k))}: {_json(v, indent + 1)}" for k, v in sorted(value.items())
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + _json(v, indent + 1) for v in value) + "\n" + pad + "]"
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)


_DOUBLE_BRACE = re.compile(r"\{(?=\{)")


def _string(text: str) -> str:
    # Argo substitutes {{...}} anywhere in a template, manifests included, and has
    # no escape for it; writing the first brace of every "{{" as a JSON escape
    # hides it from Argo, and kubectl decodes it back.
    return _DOUBLE_BRACE.sub(r"\\u007b", json.dumps(text, ensure_ascii=False))


def to_argo_manifest(doc: dict[str, Any], *, sentinel: str, replacement: str) -> str:
    """JSON for a resource template's ``manifest``: sorted keys, no ``{{`` in any
    string, then ``sentinel`` replaced by ``replacement`` (an Argo variable)."""
    return _json(doc, 0).replace(sentinel, replacement) + "\n"
