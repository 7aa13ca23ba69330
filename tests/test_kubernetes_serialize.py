"""The Kubernetes backend's text: the same on every machine, whichever YAML emitter writes it.

``to_yaml`` hands a document to libyaml's emitter only where
``libyaml_writes_the_same`` says the two emitters agree, and to PyYAML's
pure-Python one (the reference) elsewhere. Held here: for any JSON-like
document, ``to_yaml`` writes the reference's text; on the documents the guard
accepts, libyaml's emitter does too; each thing the guard refuses is a real
disagreement; and the Argo manifests' JSON hides every ``{{`` and reads back
as the document.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exo.backends.kubernetes import serialize
from exo.backends.kubernetes.serialize import libyaml_writes_the_same, to_argo_manifest, to_yaml

OPTIONS: dict[str, Any] = {
    "sort_keys": True,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": 4096,
}
needs_libyaml = pytest.mark.skipif(
    serialize._LibyamlDumper is None, reason="PyYAML was built without libyaml"
)
#: The checks of libyaml against the reference, on the version exo trusts. A libyaml
#: released later is checked by adding its version to TRUSTED_LIBYAML, which makes
#: these run; until then it is not used, and a disagreement is nobody's problem.
checks_trusted_libyaml = pytest.mark.skipif(
    serialize._FastDumper is None,
    reason="no libyaml, or one not in TRUSTED_LIBYAML: add its version to check it",
)


def reference(doc: object) -> str:
    text: str = yaml.dump(doc, Dumper=serialize._Dumper, **OPTIONS)
    return text


def libyaml(doc: object) -> str:
    text: str = yaml.dump(doc, Dumper=serialize._LibyamlDumper, **OPTIONS)
    return text


def documents(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON-like documents, as ``to_dict`` makes them, with strings drawn from ``text``."""
    scalars = (
        text
        | st.integers(-(10**12), 10**12)
        | st.floats(allow_nan=False)
        | st.booleans()
        | st.none()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=24,
    )


#: Anything, lone surrogates and every control character included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)

#: What manifests hold: words YAML reads as other types, YAML's indicators, indented
#: and multi-line texts, tabs, non-ASCII letters, the characters YAML 1.1 reads as line
#: breaks, and texts longer than the emitters' line width.
_PIECES = [
    "yes", "no", "on", "null", "~", "true", "1e3", "0x1F", "12:30", "2024-01-01", "<<",
    "- x", "? x", "#x", "x #y", "a: b", "{{workflow.name}}", "|", ">", "'", '"', "\\",
    "--- ", "...", "%", "@", "`", "&a", "*a", "!t", ",", "[", "]", "{", "}",
]  # fmt: skip
_OTHERS = ["\t", "\n", "\n", " ", "\xe9", "\u4e2d", "\u03b1", "\xa0", "\u2028", "\u2029"]
_CHARS = st.sampled_from([*map(chr, range(0x20, 0x7F)), *_OTHERS, "\ud7ff", "\ue000", "\ufffd"])
_LINE = st.text(_CHARS, max_size=30) | st.sampled_from(_PIECES)
SAFE_TEXT = (
    _LINE
    | st.lists(_LINE, min_size=2, max_size=4).map("\n".join)
    | st.builds(lambda s, end: s + end, _LINE, st.sampled_from(["\n", " ", "\n  "]))
    | st.integers(4090, 4200).map(lambda n: "ab " * (n // 3))
).filter(lambda s: bool(s) and libyaml_writes_the_same({"k": s}))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(ANY_TEXT))
def test_to_yaml_writes_the_reference_text_for_any_document(doc: Any) -> None:
    try:
        expected = reference(doc)
    except UnicodeEncodeError:  # a lone surrogate the reference cannot write either
        with pytest.raises(UnicodeEncodeError):
            to_yaml(doc)
        return
    assert to_yaml(doc) == expected


@checks_trusted_libyaml
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.dictionaries(SAFE_TEXT, documents(SAFE_TEXT), min_size=1, max_size=5))
def test_libyaml_writes_the_reference_text_where_the_guard_says_so(doc: dict[str, Any]) -> None:
    assert libyaml_writes_the_same(doc)
    assert libyaml(doc) == reference(doc)


@checks_trusted_libyaml
@pytest.mark.parametrize(
    "doc",
    [
        {"": 1},  # the reference writes an empty key as "? ''"
        {"a": "\U0001f600"},  # libyaml escapes characters beyond the BMP
        {"a\r": 1},  # and writes a key with a control character as a complex key
        {"a": "x\n\n", "b": 1},  # after a "|+" block libyaml ends the document with "..."
        {"a": "\n", "b": 1},
    ],
)
def test_the_guard_refuses_where_the_emitters_disagree(doc: dict[str, Any]) -> None:
    assert not libyaml_writes_the_same(doc)
    assert libyaml(doc) != reference(doc)
    assert to_yaml(doc) == reference(doc)


@checks_trusted_libyaml
def test_libyaml_refuses_a_lone_surrogate_the_reference_writes() -> None:
    doc = {"a": "\ud800"}
    assert not libyaml_writes_the_same(doc)
    with pytest.raises(UnicodeEncodeError):
        libyaml(doc)
    assert to_yaml(doc) == reference(doc) == 'a: "\\uD800"\n'


@pytest.mark.parametrize("doc", [{"a": b"x"}, {"a": (1, 2)}, {1: "a"}, 0, "a", [1]])
def test_anything_but_a_json_like_mapping_takes_the_reference_emitter(doc: object) -> None:
    assert not libyaml_writes_the_same(doc)


@needs_libyaml
def test_libyaml_is_used_only_at_a_version_the_tests_held_to_the_reference() -> None:
    """A libyaml released later is not used until checked: add its version to
    ``TRUSTED_LIBYAML`` and the tests above run on it."""
    from yaml import _yaml

    trusted = tuple(_yaml.get_version()) in serialize.TRUSTED_LIBYAML
    assert (serialize._FastDumper is serialize._LibyamlDumper) is trusted
    assert (serialize._FastDumper is None) is not trusted


def test_without_libyaml_every_document_takes_the_reference_emitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = {"command": ["sh", "-c", "echo {{x}}\nexit 0\n"], "n": 3, "ok": True}
    with_libyaml = to_yaml(doc)
    monkeypatch.setattr(serialize, "_FastDumper", None)
    assert to_yaml(doc) == with_libyaml == reference(doc)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ANY_TEXT, documents(ANY_TEXT), max_size=5))
def test_argo_manifests_hide_every_double_brace_and_read_back(doc: dict[str, Any]) -> None:
    text = to_argo_manifest(doc, sentinel="\x00never\x00", replacement="x")
    assert "{{" not in text
    assert json.loads(text) == doc


def test_an_argo_manifest_is_indented_sorted_json_with_the_variable_in_place() -> None:
    doc = {"b": ["{{x}}", "RUN-ID/{y}"], "a": {}, "c": {"d": 1.5, "e": None}}
    text = to_argo_manifest(doc, sentinel="RUN-ID", replacement="{{workflow.name}}")
    assert text == (
        '{\n  "a": {},\n  "b": [\n    "\\u007b{x}}",\n    "{{workflow.name}}/{y}"\n  ],\n'
        '  "c": {\n    "d": 1.5,\n    "e": null\n  }\n}\n'
    )
