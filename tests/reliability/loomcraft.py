"""Build and take apart .loom files byte by byte: safetensors layout (8-byte little-endian header
length, JSON header, raw tensor bytes) with loomnet's JSON in the header metadata."""

from __future__ import annotations

import json
import struct
from typing import Any


def split(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(header dict, data bytes) of a well-formed safetensors blob."""
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def join(header: dict[str, Any] | bytes, data: bytes = b"", *, claimed_length: int | None = None) -> bytes:
    """A safetensors blob from a header (dict or raw bytes), optionally lying about the header length."""
    raw = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    length = len(raw) if claimed_length is None else claimed_length
    return struct.pack("<Q", length) + raw + data


def map_metadata_json(header: dict[str, Any], edit) -> dict[str, Any]:
    """Apply ``edit(obj)`` to every JSON document stored as a string in ``__metadata__``."""
    header = json.loads(json.dumps(header))
    meta = header.get("__metadata__", {})
    for key, value in meta.items():
        try:
            doc = json.loads(value)
        except (TypeError, ValueError):
            continue
        if isinstance(doc, dict | list):
            edit(doc)
            meta[key] = json.dumps(doc)
    return header


def set_everywhere(doc: Any, key: str, value: Any) -> int:
    """Set ``key`` to ``value`` in every dict nested in ``doc``; return how many were set."""
    count = 0
    if isinstance(doc, dict):
        for k in list(doc):
            if k == key:
                doc[k] = value
                count += 1
            else:
                count += set_everywhere(doc[k], key, value)
    elif isinstance(doc, list):
        for item in doc:
            count += set_everywhere(item, key, value)
    return count
