import gzip
import io

import numpy as np
import pytest

from emnist_study import idx
from emnist_study.errors import UserError


def parse(raw: bytes, name: str, ndim: int) -> np.ndarray:
    """IDX bytes read as a file of that name would be."""
    return idx.read_idx_stream(io.BytesIO(raw), name, ndim)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(compress):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(parse(idx.encode_idx(images, compress), "x.gz" if compress else "x", 3), images)


def test_wrong_magic_number_names_both_numbers():
    labels = idx.encode_idx(np.arange(5, dtype=np.uint8))
    with pytest.raises(UserError, match=r"magic number 0x00000801, expected 0x00000803"):
        parse(labels, "labels-as-images", 3)


def test_truncated_body():
    raw = idx.encode_idx(np.zeros((3, 28, 28), np.uint8))[:-10]
    with pytest.raises(UserError, match="truncated"):
        parse(raw, "short", 3)


def test_truncated_gzip():
    raw = idx.encode_idx(np.zeros((3, 28, 28), np.uint8), compress=True)
    with pytest.raises(UserError, match="truncated or corrupt gzip"):
        parse(raw[: len(raw) // 2], "short.gz", 3)


def test_gz_name_without_gzip_content():
    with pytest.raises(UserError, match="not a gzip file"):
        parse(idx.encode_idx(np.zeros(3, np.uint8)), "labels.gz", 1)


def test_reads_gzip_even_without_gz_suffix():
    raw = gzip.compress(idx.encode_idx(np.arange(4, dtype=np.uint8)))
    assert parse(raw, "labels", 1).tolist() == [0, 1, 2, 3]
