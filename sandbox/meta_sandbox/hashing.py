"""Stable, platform-independent hashing used to derive every pseudo-random number."""

from __future__ import annotations

import random
import struct
from hashlib import blake2b

_UNPACK16 = struct.Struct("<16I").unpack
_SCALE32 = 1.0 / 4294967296.0


def _key(parts: tuple[object, ...]) -> bytes:
    return "\x1f".join(str(p) for p in parts).encode()


def h64(*parts: object) -> int:
    """A 64-bit integer that depends only on the parts (stable across runs and machines)."""
    return int.from_bytes(blake2b(_key(parts), digest_size=8).digest(), "little")


def unit(*parts: object) -> float:
    """One uniform number in [0, 1) derived from the parts."""
    return h64(*parts) / 18446744073709551616.0


def uniforms16_bytes(key: bytes) -> list[float]:
    """Sixteen independent uniforms in [0, 1) from one hash of an encoded key (hot path)."""
    return [r * _SCALE32 for r in _UNPACK16(blake2b(key, digest_size=64).digest())]


def rng(*parts: object) -> random.Random:
    """A `random.Random` seeded from the parts (for world generation, not the hot path)."""
    return random.Random(h64(*parts))
