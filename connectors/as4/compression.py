"""Payload compression (AS4 profile §3.1, eDelivery AS4 1.15 §1.4.3.1): GZIP, and nothing else.

A compressed payload is announced by the PartProperty ``CompressionType`` = ``application/gzip`` (the legacy alias
``application/x-gzip`` is accepted on reception; the hub always writes ``application/gzip``). Any other value, data
that is not gzip, or data that inflates past the limits is EBMS:0303 DecompressionFailure. Decompression streams
with a ceiling on the output and on the inflation ratio, so a small bomb never reaches memory.
"""

from __future__ import annotations

import gzip
import zlib

from connectors.as4 import ns
from connectors.as4.errors import As4Error, EbmsError

#: Largest payload after decompression.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: Largest inflation ratio once the output passes RATIO_FLOOR bytes (XML rarely passes 50:1; DEFLATE's ceiling is
#: about 1032:1, which is what bombs aim for).
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
#: CompressionType values read as gzip (compared without parameters, in lower case).
GZIP_TYPES = frozenset({ns.GZIP, "application/x-gzip"})

_CHUNK = 64 * 1024
#: Most output produced by one inflation step.
_STEP = 256 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip_type(compression_type: str) -> bool:
    """Whether a ``CompressionType`` value names gzip."""
    return compression_type.split(";", 1)[0].strip().lower() in GZIP_TYPES


def decompress(data: bytes, *, compression_type: str | None, limit: int = MAX_DECOMPRESSED_BYTES,
               max_ratio: int = MAX_RATIO, where: str | None = None) -> bytes:
    """The payload ``data`` decompressed as its ``CompressionType`` says (None: not compressed, returned as is).

    Raises :class:`As4Error` EBMS:0303 for a type other than gzip, data that is not complete gzip (several members
    are read, trailing zero bytes ignored), more than ``limit`` bytes of output, or an inflation ratio above
    ``max_ratio``. ``where`` names the part in the error (its ``cid:``).
    """
    if compression_type is None:
        return data
    if not is_gzip_type(compression_type):
        raise As4Error(EbmsError.DECOMPRESSION_FAILURE,
                       f"CompressionType {compression_type!r} is not supported: AS4 compresses with {ns.GZIP} only", where=where)
    if not data:
        raise As4Error(EbmsError.DECOMPRESSION_FAILURE, "the compressed payload is empty", where=where)
    output: list[bytes] = []
    produced = 0
    remaining = memoryview(data)
    while True:
        if bytes(remaining[:2]) != _GZIP_MAGIC:
            raise As4Error(EbmsError.DECOMPRESSION_FAILURE, "the payload is not gzip data (no gzip header)", where=where)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        consumed = 0
        pending = b""
        while not inflater.eof:
            if not pending:
                if consumed >= len(remaining):
                    raise As4Error(EbmsError.DECOMPRESSION_FAILURE, "the gzip data is truncated", where=where)
                pending = bytes(remaining[consumed:consumed + _CHUNK])
                consumed += len(pending)
            try:
                # Small steps: the ratio is checked after each, so a bomb is stopped within a step, not at the limit.
                chunk = inflater.decompress(pending, min(limit - produced + 1, _STEP))
            except zlib.error as exc:
                raise As4Error(EbmsError.DECOMPRESSION_FAILURE, f"the gzip data is corrupt: {exc}", where=where) from None
            pending = inflater.unconsumed_tail
            produced += len(chunk)
            output.append(chunk)
            if produced > limit:
                raise As4Error(EbmsError.DECOMPRESSION_FAILURE, f"the payload decompresses to more than {limit} bytes", where=where)
            read = len(data) - len(remaining) + consumed - len(pending)
            if produced > RATIO_FLOOR and produced > max_ratio * max(read, 1):
                raise As4Error(EbmsError.DECOMPRESSION_FAILURE,
                               f"the payload inflates more than {max_ratio} times (a compression bomb?)", where=where)
        rest = inflater.unused_data + pending + bytes(remaining[consumed:])
        if not rest.strip(b"\x00"):
            return b"".join(output)
        remaining = memoryview(rest)


def compress(data: bytes) -> bytes:
    """``data`` gzipped for an AS4 payload part, reproducibly (modification time 0)."""
    return gzip.compress(data, mtime=0)
