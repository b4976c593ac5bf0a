"""The IDX file format of MNIST and EMNIST (http://yann.lecun.com/exdb/mnist/), plain or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the data. Only unsigned bytes (type 0x08) occur in these datasets.
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import UserError

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def decompress_if_gzip(raw: bytes, name: str) -> bytes:
    """Return the content of a gzip stream, or `raw` itself when it is not gzip (and not named .gz)."""
    if raw[:2] != GZIP_MAGIC:
        if name.endswith(".gz"):
            raise UserError(f"{name} is not a gzip file (it does not start with the gzip magic bytes)")
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise UserError(f"{name} is a truncated or corrupt gzip file ({exc}); download it again") from None


def parse_idx(raw: bytes, name: str, ndim: int) -> np.ndarray:
    """Parse IDX bytes (gzip-compressed or not) into a uint8 array with `ndim` dimensions."""
    data = decompress_if_gzip(raw, name)
    if len(data) < 4:
        raise UserError(f"{name} is too short to be an IDX file ({len(data)} bytes)")
    zero1, zero2, type_code, dims = data[0], data[1], data[2], data[3]
    expected_magic = (UBYTE << 8) | ndim
    magic = struct.unpack(">I", data[:4])[0]
    if zero1 or zero2 or type_code != UBYTE or dims != ndim:
        raise UserError(
            f"{name} has IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}): is it the right file?"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise UserError(f"{name} is truncated inside its IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected_size = int(np.prod(shape))
    body = memoryview(data)[header_size:]
    if len(body) != expected_size:
        raise UserError(
            f"{name} is truncated or padded: its header promises {expected_size:,} bytes of data for shape "
            f"{shape}, the file holds {len(body):,}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (optionally .gz) from disk."""
    return parse_idx(Path(path).read_bytes(), Path(path).name, ndim)


def encode_idx(array: np.ndarray, compress: bool = False) -> bytes:
    """The IDX bytes of a uint8 array (used by the tests to generate data in the official format)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", (UBYTE << 8) | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    return gzip.compress(raw) if compress else raw
