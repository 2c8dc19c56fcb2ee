"""CRC32C (Castagnoli), the checksum Secret Manager puts beside every payload (``dataCrc32c``).

Pure Python with a 256-entry table: payloads are at most 64 KiB, so speed is
not a concern, and the sandbox needs no native ``google-crc32c`` wheel.
"""

from __future__ import annotations

_POLYNOMIAL = 0x82F63B78  # the reversed Castagnoli polynomial


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc32c(data: bytes) -> int:
    """The CRC32C of ``data`` as an unsigned 32-bit integer (``crc32c(b"123456789") == 0xE3069283``)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
