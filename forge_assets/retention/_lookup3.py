"""PostgreSQL's hash functions (src/common/hashfn.c, little-endian) over numpy arrays, vectorized across
values: what the content checksum (content.py) reproduces bit for bit. The 32-bit state lives in uint32 arrays,
so numpy's wrapping arithmetic is lookup3's; strings are hashed 8,192 at a time (their state stays in the CPU's
cache), their 12-byte blocks taken in rounds across the strings still that long (longest first, so each round
works on a prefix). Strings over 4 kB are hashed together, apart, so that their blocks too go in rounds over
many strings; the last blocks of the few longest go in plain Python (~6 MB/s)."""

import struct

import numpy as np

_U32 = np.uint32
_GOLDEN = 0x9E3779B9 + 3923095


def _rotate(x, k, out, scratch):
    """out = x rotated left by k bits (out and scratch: arrays like x, overwritten)."""
    np.left_shift(x, _U32(k), out=out)
    np.right_shift(x, _U32(32 - k), out=scratch)
    out |= scratch
    return out


def _mix(a, b, c):
    r, s = np.empty_like(a), np.empty_like(a)
    a -= c
    a ^= _rotate(c, 4, r, s)
    c += b
    b -= a
    b ^= _rotate(a, 6, r, s)
    a += c
    c -= b
    c ^= _rotate(b, 8, r, s)
    b += a
    a -= c
    a ^= _rotate(c, 16, r, s)
    c += b
    b -= a
    b ^= _rotate(a, 19, r, s)
    a += c
    c -= b
    c ^= _rotate(b, 4, r, s)
    b += a


def _final(a, b, c):
    r, s = np.empty_like(a), np.empty_like(a)
    c ^= b
    c -= _rotate(b, 14, r, s)
    a ^= c
    a -= _rotate(c, 11, r, s)
    b ^= a
    b -= _rotate(a, 25, r, s)
    c ^= b
    c -= _rotate(b, 16, r, s)
    a ^= c
    a -= _rotate(c, 4, r, s)
    b ^= a
    b -= _rotate(a, 14, r, s)
    c ^= b
    c -= _rotate(b, 24, r, s)


def _seeded(lengths: np.ndarray, seed: int):
    """lookup3's initial state for keys of `lengths` bytes and a 64-bit seed, as three uint32 arrays."""
    a = (lengths.astype(np.uint64) + _GOLDEN).astype(_U32)
    b, c = a.copy(), a.copy()
    if seed:
        a += _U32((seed >> 32) & 0xFFFFFFFF)
        b += _U32(seed & 0xFFFFFFFF)
        _mix(a, b, c)
    return a, b, c


def _result(b, c) -> np.ndarray:
    return (b.astype(np.uint64) << np.uint64(32)) | c


def hash_uint32(values: np.ndarray, seed: int) -> np.ndarray:
    """hash_bytes_uint32_extended (hashint2extended, hashint4extended) of each value's low 32 bits."""
    a, b, c = _seeded(np.full(len(values), 4, dtype=np.uint32), seed)
    a += values.astype(np.uint64).astype(_U32)
    _final(a, b, c)
    return _result(b, c)


def fold_int64(values: np.ndarray) -> np.ndarray:
    """hashint8extended's fold of a 64-bit integer into the 32 bits it hashes."""
    bits = values.view(np.uint64)
    low, high = bits & np.uint64(0xFFFFFFFF), bits >> np.uint64(32)
    return low ^ np.where(values >= 0, high, ~high & np.uint64(0xFFFFFFFF))


def hash_float8(values: np.ndarray, seed: int) -> np.ndarray:
    """hashfloat8extended: 0 (and -0) hash to the seed, every NaN like PostgreSQL's NaN, else the 8 bytes."""
    word = np.where(np.isnan(values), np.uint64(0x7FF8000000000000), values.view(np.uint64))
    a, b, c = _seeded(np.full(len(values), 8, dtype=np.uint32), seed)
    b += (word >> np.uint64(32)).astype(_U32)
    a += word.astype(_U32)
    _final(a, b, c)
    out = _result(b, c)
    out[values == 0.0] = np.uint64(seed)
    return out


_STRINGS_AT_ONCE = 8192
_LONG_BYTES = 4096  # longer strings of a column are hashed together, apart from the short ones
_FEW_STRINGS = 16
_M32 = 0xFFFFFFFF


def hash_bytes(data: np.ndarray, offsets: np.ndarray, seed: int, rtrim: bool) -> np.ndarray:
    """hash_bytes_extended of each string data[offsets[i]:offsets[i+1]] (rtrim: less trailing blanks)."""
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    if rtrim:
        while True:
            last = np.flatnonzero(lengths > 0)
            blank = last[data[starts[last] + lengths[last] - 1] == 32]
            if not len(blank):
                break
            lengths[blank] -= 1
    long = lengths > _LONG_BYTES
    out = np.empty(len(lengths), dtype=np.uint64)
    for first in range(0, len(out), _STRINGS_AT_ONCE):
        part = slice(first, first + _STRINGS_AT_ONCE)
        low, high = starts[part][0], starts[part][-1] + lengths[part][-1]
        out[part] = _hash_strings(data[low:high], starts[part] - low, np.where(long[part], 0, lengths[part]), seed)
    if long.any():  # together, so that their blocks go in numpy rounds over many strings
        which = np.flatnonzero(long)
        joined = np.concatenate([data[starts[i]:starts[i] + lengths[i]] for i in which])
        joined_starts = np.concatenate([[0], np.cumsum(lengths[which])[:-1]])
        out[which] = _hash_strings(joined, joined_starts, lengths[which], seed)
    return out


def _hash_strings(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    """hash_bytes_extended of each data[starts[i]:starts[i] + lengths[i]]."""
    padded = np.zeros(len(data) + 16, dtype=np.uint8)
    padded[:len(data)] = data
    # every unaligned little-endian 4-byte word, and 12-byte block, of the data: one per byte position
    words = np.ndarray(shape=(len(padded) - 3,), dtype="<u4", buffer=padded, strides=(1,))
    twelves = np.ndarray(shape=(len(padded) - 11,), dtype="V12", buffer=padded, strides=(1,))
    blocks = lengths // 12
    order = np.argsort(-blocks, kind="stable")
    starts, lengths, blocks = starts[order], lengths[order], blocks[order]
    a, b, c = _seeded(lengths, seed)
    # strings with more than r blocks are the first active[r] of the order
    active = len(blocks) - np.searchsorted(blocks[::-1], np.arange(1, (blocks[0] if len(blocks) else 0) + 1),
                                           side="left")
    for r, k in enumerate(active):
        if k < _FEW_STRINGS:  # a round of numpy calls costs more than these strings' blocks in plain Python
            for i in range(k):
                a[i], b[i], c[i] = _blocks_in_python(padded, int(starts[i]) + 12 * r, int(blocks[i]) - r,
                                                     int(a[i]), int(b[i]), int(c[i]))
            break
        block = twelves[starts[:k] + 12 * r].view("<u4").reshape(k, 3)
        ak, bk, ck = a[:k], b[:k], c[:k]
        ak += block[:, 0]
        bk += block[:, 1]
        ck += block[:, 2]
        _mix(ak, bk, ck)
    at = starts + 12 * blocks
    rest = lengths - 12 * blocks
    c += np.where(rest >= 9, (words[at + 8] & _mask(rest - 8)) << _U32(8), _U32(0))
    b += np.where(rest >= 5, words[at + 4] & _mask(np.minimum(rest, 8) - 4), _U32(0))
    a += np.where(rest >= 1, words[at] & _mask(np.minimum(rest, 4)), _U32(0))
    _final(a, b, c)
    out = np.empty(len(order), dtype=np.uint64)
    out[order] = _result(b, c)
    return out


def _mask(count: np.ndarray) -> np.ndarray:
    """The low `count` bytes (0..4) of a 32-bit word."""
    return ((np.uint64(1) << (8 * np.clip(count, 0, 4)).astype(np.uint64)) - np.uint64(1)).astype(_U32)


def _blocks_in_python(data: np.ndarray, at: int, count: int, a: int, b: int, c: int) -> tuple[int, int, int]:
    """lookup3's state after `count` more 12-byte blocks of one string from `at`, in plain Python integers:
    ~2 µs a block (~6 MB/s), where a round of numpy calls for a few long strings costs ~40 µs."""
    for x, y, z in struct.iter_unpack("<3I", data[at:at + 12 * count].tobytes()):
        a, b, c = (a + x) & _M32, (b + y) & _M32, (c + z) & _M32
        a = (a - c) & _M32
        a ^= ((c << 4) | (c >> 28)) & _M32
        c = (c + b) & _M32
        b = (b - a) & _M32
        b ^= ((a << 6) | (a >> 26)) & _M32
        a = (a + c) & _M32
        c = (c - b) & _M32
        c ^= ((b << 8) | (b >> 24)) & _M32
        b = (b + a) & _M32
        a = (a - c) & _M32
        a ^= ((c << 16) | (c >> 16)) & _M32
        c = (c + b) & _M32
        b = (b - a) & _M32
        b ^= ((a << 19) | (a >> 13)) & _M32
        a = (a + c) & _M32
        c = (c - b) & _M32
        c ^= ((b << 4) | (b >> 28)) & _M32
        b = (b + a) & _M32
    return a, b, c
