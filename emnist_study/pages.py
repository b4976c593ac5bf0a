"""Pages as a user would photograph them, made from 28x28 letters: each letter scaled up to 100-300 pixels, dark
ink on lighter paper, off-centre on a larger page, with uneven light, a little blur and the grain of a camera;
several letters side by side make a word. What the conversion of handwriting.py is measured on
(predict_fidelity.py, docs/predict.md): a letter's page converted back should give its 28x28 image again.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

LETTER_PIXELS = (100, 300)  # how tall a letter is drawn on the page


@dataclass
class Page:
    """A page (uint8 greyscale, dark ink on light paper) and, for each of its letters, left to right, the columns
    its ink spans."""

    image: np.ndarray
    columns: list[slice]


def enlarged(letter: np.ndarray, pixels: int) -> np.ndarray:
    """A 28x28 letter (uint8, light on black) as a `pixels`-square float image 0..1, smoothly (bicubic)."""
    big = Image.fromarray(letter.astype(np.float32) / 255.0, mode="F").resize((pixels, pixels),
                                                                               Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big), 0, 1)


def ink_columns(image: np.ndarray, level: float = 0.2) -> tuple[int, int]:
    columns = np.flatnonzero((image > level).any(axis=0))
    return (int(columns[0]), int(columns[-1]) + 1) if columns.size else (0, image.shape[1])


def photographed(letters: np.ndarray, rng: np.random.Generator, *, light_on_dark: bool = False) -> Page:
    """A page holding `letters` ((count, 28, 28) uint8, upright, light on black, as the loaders give them) side by
    side, left to right, drawn as a phone photographs a sheet of paper."""
    pixels = int(rng.integers(*LETTER_PIXELS, endpoint=True))
    big = [enlarged(letter, pixels) for letter in letters]
    spans = [ink_columns(image) for image in big]
    gap = int(pixels * rng.uniform(0.12, 0.3))  # between one letter's ink and the next's
    width = sum(stop - start for start, stop in spans) + gap * (len(big) - 1)
    margin_x, margin_y = (int(pixels * rng.uniform(0.3, 1.2)) for _ in range(2))
    page_w = width + margin_x + int(pixels * rng.uniform(0.3, 1.2))
    page_h = pixels + margin_y + int(pixels * rng.uniform(0.3, 1.2))
    ink = np.zeros((page_h, page_w), np.float32)
    x, columns = margin_x, []
    for image, (start, stop) in zip(big, spans):
        ink[margin_y: margin_y + pixels, x: x + stop - start] = np.maximum(
            ink[margin_y: margin_y + pixels, x: x + stop - start], image[:, start:stop])
        columns.append(slice(x, x + stop - start))
        x += stop - start + gap
    # paper lit unevenly: brighter towards one corner, darker towards another, by up to a third
    yy, xx = np.mgrid[0:page_h, 0:page_w] / max(page_h, page_w)
    angle = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0.75, 0.95) * (1 - rng.uniform(0.1, 0.35) * (np.cos(angle) * xx + np.sin(angle) * yy))
    strength = rng.uniform(0.6, 0.85)  # how much darker than the paper the ink is (a pen, not a printer)
    page = light * (1 - strength * ink)
    if light_on_dark:
        page = light * (0.15 + strength * ink)
    page = ndimage.gaussian_filter(page, rng.uniform(0.5, 1.5))  # the lens's blur
    page = page + rng.normal(0, 0.03, page.shape)  # the sensor's grain
    return Page(np.round(255 * np.clip(page, 0, 1)).astype(np.uint8), columns)


def save(page: Page, path, quality: int = 90) -> Path:
    """The page as a PNG, or as a JPEG (lossy, as a phone saves it) where `path` ends in .jpg."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lossy = path.suffix.lower() in (".jpg", ".jpeg")
    Image.fromarray(page.image).save(path, **({"quality": quality} if lossy else {}))
    return path
