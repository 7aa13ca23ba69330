"""Kubernetes names and label values made from exo names, deterministically.

Step and workflow names in ``.exo`` files may hold upper case, ``_`` and ``.``;
object names must be DNS-1123 labels (lower case alphanumerics and ``-``, at
most 63 characters, alphanumeric at both ends) and label values have their own
alphabet. A name that had to be shortened, or that would collide with another
one after cleaning, gets a short hash of the original name as a suffix, so the
mapping stays injective and stable from run to run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

#: A DNS-1123 label (RFC 1123): what Kubernetes requires of most object names.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: A label value (may be empty).
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: The name part of a qualified name (label keys, resource names such as ``nvidia.com/gpu``).
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

_HASH_LEN = 6


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LEN]


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and DNS_LABEL.match(name) is not None


def is_dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and DNS_SUBDOMAIN.match(name) is not None


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and LABEL_VALUE.match(value) is not None


def is_qualified_name(key: str) -> bool:
    """A label/annotation key or extended resource name: ``[prefix/]name``."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not is_dns_subdomain(prefix):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.match(name) is not None


def _clean(text: str, keep: str) -> str:
    out = re.sub(f"[^{keep}]+", "-", text)
    return re.sub(r"-{2,}", "-", out)


def _fit(cleaned: str, original: str, max_len: int, force_hash: bool, ends: str) -> str:
    cleaned = cleaned.strip(ends)
    if not cleaned:
        cleaned = "x"
        force_hash = force_hash or original != ""
    if len(cleaned) <= max_len and not force_hash:
        return cleaned
    suffix = short_hash(original)
    head = cleaned[: max_len - _HASH_LEN - 1].rstrip(ends)
    return f"{head}-{suffix}" if head else suffix


def dns_label(name: str, max_len: int = 63, *, force_hash: bool = False) -> str:
    """``name`` as a DNS-1123 label of at most ``max_len`` characters."""
    cleaned = _clean(name.lower(), "a-z0-9")
    return _fit(cleaned, name, max_len, force_hash, "-")


def label_value(text: str, *, force_hash: bool = False) -> str:
    """``text`` as a label value (at most 63 characters, alphanumeric at both ends)."""
    if not force_hash and is_label_value(text):
        return text
    cleaned = _clean(text, "A-Za-z0-9_.-")
    return _fit(cleaned, text, 63, force_hash or cleaned != text, "-_.")


def unique_labels(names: Iterable[str], max_len: int) -> dict[str, str]:
    """A DNS-1123 label for every name, distinct for distinct names.

    Names whose cleaned forms collide all get a hash suffix (never only the
    second one), so a name's label does not depend on declaration order.
    """
    names = list(dict.fromkeys(names))
    first = {n: dns_label(n, max_len) for n in names}
    counts: dict[str, int] = {}
    for label in first.values():
        counts[label] = counts.get(label, 0) + 1
    out = {
        n: (dns_label(n, max_len, force_hash=True) if counts[lab] > 1 else lab)
        for n, lab in first.items()
    }
    if len(set(out.values())) != len(out):  # a hash collision: astronomically unlikely
        raise ValueError("cannot derive distinct Kubernetes names for: " + ", ".join(names))
    return out
