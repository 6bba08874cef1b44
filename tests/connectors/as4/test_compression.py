"""GZIP payload compression (AS4 profile §3.1) on the real compressed attachments, the negative vector, and bombs."""

from __future__ import annotations

import gzip
import random

import pytest
from lxml import etree

from connectors.as4 import ns
from connectors.as4.compression import RATIO_FLOOR, compress, decompress, is_gzip_type
from connectors.as4.ebms import read_messaging
from connectors.as4.errors import As4Error, EbmsError
from connectors.as4.packaging import read_packet

SAMPLES = "samples/as4"


@pytest.fixture
def packet(standards):
    return lambda name: read_packet((standards / SAMPLES / name).read_bytes())


def _failure(data: bytes, fragment: str, **kwargs) -> As4Error:
    kwargs.setdefault("compression_type", ns.GZIP)
    with pytest.raises(As4Error) as caught:
        decompress(data, **kwargs)
    assert caught.value.error is EbmsError.DECOMPRESSION_FAILURE and caught.value.code == "EBMS:0303"
    assert fragment in caught.value.message
    return caught.value


def test_holodeck_attachments_decompress(packet):
    received = packet("as4net-signed_holodeck_message.as4.mime")
    (user,) = read_messaging(received).user_messages
    image, xml = (decompress(received.attachment(part.href).data, compression_type=part.compression_type, where=part.href)
                  for part in user.parts)
    assert [part.mime_type for part in user.parts] == ["image/jpeg", "application/xml"]
    assert len(image) == 296454 and image[:3] == b"\xff\xd8\xff" and image[-2:] == b"\xff\xd9"  # JPEG SOI ... EOI
    assert len(xml) == 206 and etree.fromstring(xml) is not None


def test_wrong_compression_is_ebms_0303(packet):
    received = packet("phase4-WrongCompression.mime")
    (part,) = read_messaging(received).user_messages[0].parts
    data = received.attachment(part.href).data
    error = _failure(data, "CompressionType 'application/rar' is not supported", compression_type=part.compression_type,
                     where=part.href)
    assert error.where == "cid:ph-as4-0026b807-e599-40e2-af67-22f2e6fe4ddd"
    # The bytes themselves are gzip: only the announced type is refused.
    assert decompress(data, compression_type=ns.GZIP).startswith(b"<!--")


def test_gzip_types():
    assert is_gzip_type("application/gzip") and is_gzip_type(" Application/GZIP ") and is_gzip_type("application/x-gzip")
    assert not is_gzip_type("application/zip") and not is_gzip_type("application/rar")
    assert decompress(compress(b"x"), compression_type="application/x-gzip") == b"x"


def test_uncompressed_parts_pass_through():
    assert decompress(b"not gzip", compression_type=None) == b"not gzip"


def test_compress_round_trip_and_is_reproducible():
    payload = b"<Invoice>" + bytes(range(256)) * 50 + b"</Invoice>"
    packed = compress(payload)
    assert packed == compress(payload) and packed[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert gzip.decompress(packed) == payload
    assert decompress(packed, compression_type=ns.GZIP) == payload


def test_several_members_and_trailing_zeros():
    assert decompress(compress(b"one ") + compress(b"two"), compression_type=ns.GZIP) == b"one two"
    assert decompress(compress(b"one") + b"\x00" * 8, compression_type=ns.GZIP) == b"one"


def test_gzip_bomb_is_stopped_by_the_ratio():
    bomb = compress(b"\x00" * (32 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    _failure(bomb, "inflates more than 200 times")


def test_ratio_counts_every_member():
    """A barely compressible first member, then a small one: the ratio is over all the input read."""
    random_like = random.Random(15).randbytes(2 * 1024 * 1024)
    data = compress(random_like) + compress(b"\x00" * 20_000)
    assert len(decompress(data, compression_type=ns.GZIP)) == len(random_like) + 20_000


def test_output_limit():
    payload = compress(bytes(range(256)) * 40)  # 10240 bytes, barely compressible
    _failure(payload, "decompresses to more than 10000 bytes", limit=10_000)
    assert len(decompress(payload, compression_type=ns.GZIP, limit=10_240)) == 10_240


def test_ratio_is_only_checked_past_the_floor():
    small = compress(b"\x00" * (RATIO_FLOOR // 2))  # a ratio of ~1000, but half a megabyte
    assert len(decompress(small, compression_type=ns.GZIP)) == RATIO_FLOOR // 2


@pytest.mark.parametrize("data, fragment", [
    (b"", "empty"),
    (b"PK\x03\x04 a zip file", "not gzip data"),
    (compress(b"hello world" * 100)[:-12], "truncated"),
    (compress(b"hello") + b"garbage", "not gzip data"),
    (compress(b"hello")[:10] + b"\xff" * 20 + compress(b"hello")[30:], "corrupt"),
])
def test_corrupt_data(data, fragment):
    _failure(data, fragment)


def test_crc_mismatch():
    packed = bytearray(compress(b"hello world"))
    packed[-8] ^= 0xFF  # CRC32 of the trailer
    _failure(bytes(packed), "incorrect data check")
