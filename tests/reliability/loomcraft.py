"""Build and take apart .loom files byte by byte, to craft hostile ones.

Layout (see loomnet.io.modelfile): ``b"LOOMNET\\0"`` | u64 little-endian header length | JSON header |
safetensors blob; the safetensors blob is itself u64 length | JSON | raw tensor bytes. ``join``
recomputes the SHA-256 and size in the header, so a crafted file gets past the checksum and
reaches the deeper checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

MAGIC = b"LOOMNET\x00"


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def split(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """(JSON header, safetensors blob) of a well-formed .loom file."""
    assert blob[:8] == MAGIC
    (n,) = struct.unpack("<Q", blob[8:16])
    return json.loads(blob[16:16 + n]), blob[16 + n:]


def join(header: dict[str, Any] | bytes, weights: bytes = b"", *, claimed_length: int | None = None,
         fix_checksum: bool = True) -> bytes:
    """A .loom file from a header and a safetensors blob, checksum made to match unless told not to."""
    if isinstance(header, dict) and fix_checksum:
        header = json.loads(json.dumps(header))
        index = header.setdefault("tensors", {})
        if isinstance(index, dict):
            index["sha256"] = hashlib.sha256(weights).hexdigest()
            index["bytes"] = len(weights)
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(raw) if claimed_length is None else claimed_length
    return MAGIC + _u64(length) + raw + weights


def st_split(weights: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack("<Q", weights[:8])
    return json.loads(weights[8:8 + n]), weights[8 + n:]


def st_join(header: dict[str, Any] | bytes, data: bytes, *, claimed_length: int | None = None) -> bytes:
    """A safetensors blob (header padded to 8 bytes as the format asks)."""
    raw = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if not isinstance(header, bytes):
        raw += b" " * (-len(raw) % 8)
    length = len(raw) if claimed_length is None else claimed_length
    return _u64(length) + raw + data


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


class Payload:
    """Unpickling this creates a directory: proof that something was executed."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))
