"""PostgreSQL's hash functions (src/common/hashfn.c, little-endian), compiled by numba: what the content
checksum (content.py) reproduces bit for bit. Imported only when a file is checked (numba takes seconds to
import); compiled once, then cached next to this file."""

import numba
import numpy as np


@numba.njit(inline="always")
def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


@numba.njit(inline="always")
def _mix(a, b, c):
    a = (a - c) & 0xFFFFFFFF
    a ^= _rot(c, 4)
    c = (c + b) & 0xFFFFFFFF
    b = (b - a) & 0xFFFFFFFF
    b ^= _rot(a, 6)
    a = (a + c) & 0xFFFFFFFF
    c = (c - b) & 0xFFFFFFFF
    c ^= _rot(b, 8)
    b = (b + a) & 0xFFFFFFFF
    a = (a - c) & 0xFFFFFFFF
    a ^= _rot(c, 16)
    c = (c + b) & 0xFFFFFFFF
    b = (b - a) & 0xFFFFFFFF
    b ^= _rot(a, 19)
    a = (a + c) & 0xFFFFFFFF
    c = (c - b) & 0xFFFFFFFF
    c ^= _rot(b, 4)
    b = (b + a) & 0xFFFFFFFF
    return a, b, c


@numba.njit(inline="always")
def _final(a, b, c):
    c ^= b
    c = (c - _rot(b, 14)) & 0xFFFFFFFF
    a ^= c
    a = (a - _rot(c, 11)) & 0xFFFFFFFF
    b ^= a
    b = (b - _rot(a, 25)) & 0xFFFFFFFF
    c ^= b
    c = (c - _rot(b, 16)) & 0xFFFFFFFF
    a ^= c
    a = (a - _rot(c, 4)) & 0xFFFFFFFF
    b ^= a
    b = (b - _rot(a, 14)) & 0xFFFFFFFF
    c ^= b
    c = (c - _rot(b, 24)) & 0xFFFFFFFF
    return a, b, c


@numba.njit(inline="always")
def _seeded(length, seed):
    a = b = c = (np.uint64(0x9E3779B9) + np.uint64(length) + np.uint64(3923095)) & 0xFFFFFFFF
    if seed != 0:
        a = (a + (seed >> 32)) & 0xFFFFFFFF
        b = (b + (seed & 0xFFFFFFFF)) & 0xFFFFFFFF
        a, b, c = _mix(a, b, c)
    return a, b, c


@numba.njit(inline="always")
def _word(data, at, count):
    value = np.uint64(0)
    for j in range(count):
        value |= np.uint64(data[at + j]) << np.uint64(8 * j)
    return value


@numba.njit(cache=True, nogil=True)
def _hash_bytes(data, offsets, seed, rtrim, out):
    """hash_bytes_extended of each string data[offsets[i]:offsets[i+1]] (rtrim: less trailing blanks)."""
    for i in range(len(offsets) - 1):
        at = offsets[i]
        length = offsets[i + 1] - at
        if rtrim:
            while length > 0 and data[at + length - 1] == 32:
                length -= 1
        a, b, c = _seeded(length, seed)
        while length >= 12:
            a = (a + _word(data, at, 4)) & 0xFFFFFFFF
            b = (b + _word(data, at + 4, 4)) & 0xFFFFFFFF
            c = (c + _word(data, at + 8, 4)) & 0xFFFFFFFF
            a, b, c = _mix(a, b, c)
            at += 12
            length -= 12
        if length >= 9:
            c = (c + (_word(data, at + 8, length - 8) << np.uint64(8))) & 0xFFFFFFFF
        if length >= 5:
            b = (b + _word(data, at + 4, min(length, 8) - 4)) & 0xFFFFFFFF
        if length >= 1:
            a = (a + _word(data, at, min(length, 4))) & 0xFFFFFFFF
        a, b, c = _final(a, b, c)
        out[i] = (b << np.uint64(32)) | c


@numba.njit(cache=True, nogil=True)
def _hash_uint32(values, seed, out):
    """hash_bytes_uint32_extended (hashint2extended, hashint4extended) of each value's low 32 bits."""
    for i in range(len(values)):
        a, b, c = _seeded(4, seed)
        a = (a + (np.uint64(values[i]) & 0xFFFFFFFF)) & 0xFFFFFFFF
        a, b, c = _final(a, b, c)
        out[i] = (b << np.uint64(32)) | c


@numba.njit(cache=True, nogil=True)
def _fold_int64(values, out):
    """hashint8extended's fold of a 64-bit integer into the 32 bits it hashes."""
    for i in range(len(values)):
        v = values[i]
        low = np.uint64(v) & 0xFFFFFFFF
        high = (np.uint64(v) >> np.uint64(32)) & 0xFFFFFFFF
        out[i] = low ^ (high if v >= 0 else (~high & 0xFFFFFFFF))


@numba.njit(cache=True, nogil=True)
def _hash_float8(values, seed, out):
    """hashfloat8extended: 0 (and -0) hash to the seed, every NaN like PostgreSQL's NaN, else the 8 bytes."""
    bits = values.view(np.uint64)
    for i in range(len(values)):
        v = values[i]
        if v == 0.0:
            out[i] = seed
            continue
        word = np.uint64(0x7FF8000000000000) if v != v else bits[i]
        a, b, c = _seeded(8, seed)
        b = (b + (word >> np.uint64(32))) & 0xFFFFFFFF
        a = (a + (word & 0xFFFFFFFF)) & 0xFFFFFFFF
        a, b, c = _final(a, b, c)
        out[i] = (b << np.uint64(32)) | c


