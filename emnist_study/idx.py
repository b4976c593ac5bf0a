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
# The largest IDX file any copy of MNIST or EMNIST holds (ByClass's 697,932 training images, with its header): a
# file or zip member that unpacks to more is not one of theirs (a gzip bomb, a wrong file), and is refused after
# unpacking no more than that.
MOST_IDX_BYTES = 16 + 697_932 * 28 * 28
CHUNK_BYTES = 1 << 24


def unpacked(stream, name: str) -> bytearray:
    """The content of a stream of an IDX file, gunzipped where it is gzip (named .gz or not): at most
    MOST_IDX_BYTES, refused in one line where there is more."""
    most_bytes = MOST_IDX_BYTES
    head = stream.read(2)
    if head != GZIP_MAGIC and name.endswith(".gz"):
        raise UserError(f"{name} is not a gzip file (it does not start with the gzip magic bytes)")
    stream.seek(0)  # files and zip members can go back (a zip member by reading again from its start)
    source = gzip.GzipFile(fileobj=stream) if head == GZIP_MAGIC else stream
    data = bytearray()
    try:
        while len(data) <= most_bytes and (chunk := source.read(CHUNK_BYTES)):
            data += chunk
    except (EOFError, OSError, zlib.error) as exc:
        raise UserError(f"{name} is a truncated or corrupt gzip file ({exc}); download it again") from None
    if len(data) > most_bytes:
        raise UserError(f"{name} unpacks to more than {most_bytes / 1e6:,.0f} MB, more than any IDX file of MNIST or "
                        f"EMNIST: it is not one of their files; download it again")
    return data


def parse_unpacked(data: bytearray, name: str, ndim: int) -> np.ndarray:
    """IDX bytes, unpacked, as a uint8 array with `ndim` dimensions."""
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
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)  # a view of `data`: the file is in memory once


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (optionally .gz) from disk."""
    with open(path, "rb") as stream:
        return read_idx_stream(stream, Path(path).name, ndim)


def read_idx_stream(stream, name: str, ndim: int) -> np.ndarray:
    """Read an IDX file (optionally gzip) from an open stream (a file, a zip member), unpacking no more than
    MOST_IDX_BYTES."""
    return parse_unpacked(unpacked(stream, name), name, ndim)


def encode_idx(array: np.ndarray, compress: bool = False) -> bytes:
    """The IDX bytes of a uint8 array (used by the tests to generate data in the official format)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", (UBYTE << 8) | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    return gzip.compress(raw) if compress else raw
