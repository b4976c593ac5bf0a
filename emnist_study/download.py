"""Download a file with a progress bar, check its checksum, and only then move it into place.

The file is streamed to `<dest>.partial` and renamed when complete and verified, so an interrupted or corrupt
download never leaves something at `dest` that a later run would trust.
"""

import errno
import hashlib
import math
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from . import environment
from .errors import UserError

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60  # a server silent this long has failed
# A server that sends, but so slowly that the rest would take longer than this, has failed too: judged once the
# download has run for SLOW_AFTER_SECONDS, so that a slow start is forgiven.
SLOW_AFTER_SECONDS = 60
MOST_SECONDS_LEFT = 2 * 3600
# Set to 1 (or true, yes, on) to forbid downloads (the tests do; so can a user on an offline machine who wants the
# error at once).
NO_DOWNLOAD_ENV = "EMNIST_STUDY_NO_DOWNLOAD"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks so large archives do not need to fit in memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, algorithm: str, expected_digest: str, what_to_do: str) -> Path:
    """Fetch `url` to `dest`, verifying its digest. `what_to_do` tells the user how to get the file by hand."""
    dest = Path(dest)
    if environment.switch(NO_DOWNLOAD_ENV):
        raise UserError(f"downloads are disabled ({NO_DOWNLOAD_ENV}={os.environ[NO_DOWNLOAD_ENV]}). {what_to_do}")
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return fetch_verified(url, dest, algorithm, expected_digest, what_to_do)
    except BaseException:  # a failed download leaves no empty cache folders behind
        for directory in created:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break
        raise


def fetch_verified(url: str, dest: Path, algorithm: str, expected_digest: str, what_to_do: str) -> Path:
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.new(algorithm)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            refuse_if_no_room(dest.parent, total, url, what_to_do)  # rather than fail when the disk fills
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"Downloading {dest.name}")
            started, received = time.monotonic(), 0
            read = getattr(response, "read1", response.read)  # what has come, so that a slow server is noticed
            with open(partial, "wb") as out, bar:
                for chunk in iter(lambda: read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                    received += len(chunk)
                    refuse_if_too_slow(received, total, time.monotonic() - started, url, what_to_do)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise UserError(f"the disk filled while downloading {url} into {dest.parent} (nothing was kept): free "
                            f"some space there and run the same command again. {what_to_do}") from None
        reason = getattr(exc, "reason", exc)
        raise UserError(f"could not download {url} ({reason}). {what_to_do}") from None
    except BaseException:  # Ctrl-C, a server too slow: leave nothing half-written behind
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != expected_digest:
        partial.unlink()
        raise UserError(
            f"checksum mismatch for {url}: {algorithm} {digest.hexdigest()}, expected {expected_digest}. {what_to_do}"
        )
    os.replace(partial, dest)
    return dest


def refuse_if_no_room(folder: Path, size: int | None, url: str, what_to_do: str) -> None:
    """A one-line refusal when `folder`'s disk has less free space than the `size` bytes about to be downloaded."""
    if not size:  # the server did not say
        return
    free = shutil.disk_usage(folder).free
    if free < size:
        raise UserError(f"{url} is {size / 2**20:,.0f} MB, but only {free / 2**20:,.0f} MB are free in {folder}: "
                        f"free some space there, or put the file elsewhere by hand. {what_to_do}")


def refuse_if_too_slow(received: int, total: int | None, seconds: float, url: str, what_to_do: str) -> None:
    """A one-line stop when, SLOW_AFTER_SECONDS into a download, its rate so far would need more than
    MOST_SECONDS_LEFT for the rest (the size unknown: when it has not reached 10 kB/s)."""
    if seconds < SLOW_AFTER_SECONDS:
        return
    rate = received / seconds
    left = (total - received) / max(rate, 1e-9) if total else (0 if rate >= 10_000 else math.inf)
    if left > MOST_SECONDS_LEFT:
        estimate = f"{left / 3600:,.0f} more hours" if math.isfinite(left) else "no end in sight"
        raise UserError(f"{url} is coming at {rate / 1024:,.1f} kB/s ({estimate}): stopped, nothing was kept. "
                        f"{what_to_do}")
