"""Letters of known case, rendered from the fonts matplotlib ships and processed as EMNIST processed handwriting
(blurred, cropped to the glyph, centred in a square frame, scaled to fill 28x28 with a 2-pixel margin), written as
EMNIST Letters (case merged, labels 1..26) and EMNIST ByClass (case kept, labels 10..61, a few digits 0..9 too)
in the official layout: loose IDX .gz files, or inside a NIST-style gzip.zip. Images are stored transposed, as the
official files store them.

Not handwriting: fonts give clean, regular glyphs. They serve the tests, and the generated example of the case check
in docs/case-aware.md (made with `python tests/rendered_letters.py DIR`).
"""

import io
import sys
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from emnist_study.idx import encode_idx  # noqa: E402

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONTS = sorted(p for p in FONT_DIR.glob("DejaVu*.ttf") if "Display" not in p.name)  # 12 faces, both cases
CAPITALS, SMALL, DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789"


def render(char: str, font: Path, angle: float = 0.0) -> np.ndarray:
    """One glyph, upright, as EMNIST frames a character: the ink's bounding box centred in a square, scaled so its
    longer side spans 24 of the 28 pixels (a capital and its small letter of the same shape come out alike)."""
    canvas = Image.new("L", (112, 112), 0)
    ImageDraw.Draw(canvas).text((56, 56), char, fill=255, font=ImageFont.truetype(str(font), 64), anchor="mm")
    canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1))
    box = canvas.getbbox()
    glyph = canvas.crop(box)
    side = max(glyph.size)
    square = Image.new("L", (side, side), 0)
    square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    framed = Image.new("L", (28, 28), 0)
    framed.paste(square.resize((24, 24), Image.Resampling.LANCZOS), (2, 2))
    image = np.asarray(framed, dtype=np.float64)
    return np.round(255 * image / max(image.max(), 1)).astype(np.uint8)


def rendered(chars: str, per_char: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(upright images, index of each image's character in `chars`): `per_char` renderings of each character,
    cycling through the fonts, each turned by a random angle of up to 8 degrees, in a shuffled order."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, char in enumerate(chars):
        for i in range(per_char):
            images.append(render(char, FONTS[(i + label) % len(FONTS)], float(rng.uniform(-8, 8))))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.array(labels, np.int64)[order]


def byclass_split(per_case: int, digits_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Upright images and ByClass labels (0-9 digits, 10-35 A-Z, 36-61 a-z), letters first."""
    letters, letter_labels = rendered(CAPITALS + SMALL, per_case, seed)
    digits, digit_labels = rendered(DIGITS, digits_per_class, seed + 1)
    return np.concatenate([letters, digits]), np.concatenate([letter_labels + 10, digit_labels])


def official_files(per_case: dict, digits_per_class: int = 1, seed: int = 0, marked=None) -> dict[str, bytes]:
    """{file name: .gz bytes} of EMNIST Letters and ByClass, train and test (`per_case`: {"train": n, "test": n}
    renderings of each letter in each case). The letters files hold the same letters as ByClass's, case merged.
    `marked(images, byclass_labels)`, if given, may change the upright images first (the tests stamp markers)."""
    files = {}
    for split, count in per_case.items():
        images, labels = byclass_split(count, digits_per_class, seed + (0 if split == "train" else 10))
        if marked is not None:
            images = marked(images, labels)
        stored = images.transpose(0, 2, 1).copy()  # as the official files store them
        is_letter = labels >= 10
        letters = np.where(labels >= 36, labels - 36, labels - 10)[is_letter] + 1
        for kind, kind_images, kind_labels in (("byclass", stored, labels), ("letters", stored[is_letter], letters)):
            files[f"emnist-{kind}-{split}-images-idx3-ubyte.gz"] = encode_idx(kind_images, compress=True)
            files[f"emnist-{kind}-{split}-labels-idx1-ubyte.gz"] = encode_idx(kind_labels.astype(np.uint8),
                                                                             compress=True)
    return files


def write_loose(directory: Path, files: dict[str, bytes]) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (directory / name).write_bytes(raw)
    return directory


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """NIST's gzip.zip layout: every file under gzip/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, raw in files.items():
            archive.writestr(f"gzip/{name}", raw)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


if __name__ == "__main__":
    # The generated example of docs/case-aware.md: 120 renderings of each letter in each case to train on, 30 to test.
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "rendered_letters")
    write_zip(out / "gzip.zip", official_files({"train": 120, "test": 30}, digits_per_class=10))
    print(f"Wrote {out / 'gzip.zip'}")
