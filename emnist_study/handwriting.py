"""A photo, scan or drawing of a letter or a short word -> the 28x28 images EMNIST would have made of its letters.

EMNIST's makers converted each of NIST's 128x128 binary scans of a character (Cohen et al. 2017, Fig. 1): a Gaussian
blur of sigma 1, the region around the character cut out, centred in a square frame with its aspect ratio kept and
a 2-pixel border, down-sampled to 28x28 with bicubic interpolation, intensities scaled to 0..255. `emnist_frame`
does the same to one letter cut from a page, with the blur and the border scaled from NIST's pixels to the page's:
a letter 300 pixels tall gets the blur a NIST character of its shape got, not one of a pixel. How many of NIST's
pixels the letter would have spanned is read from its strokes: NIST's forms were filled in with pens whose strokes
were about `NIST_STROKE_PIXELS` of its pixels wide, so a letter ten stroke widths long was about 40 of them.

Before that, `letters_of_page` makes a page look like NIST's scans: the paper's shading (a phone photo's uneven
light) is estimated at a scale larger than the strokes and taken away, the ink made bright whether it was dark on
light or light on dark, and the ink found by a hysteresis threshold; its connected strokes are the letters, left to
right, with the dots of `i` and `j` and a letter's broken strokes joined to the letter beneath or beside them.

No TensorFlow here: the pages are read and checked before the network loads. Images come out upright, as the
project's loaders give EMNIST's (data.py turns the stored, transposed images upright).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .errors import UserError

# A pen's stroke on NIST's 128x128 scans, in their pixels: a character's length over its stroke width, times this,
# is how long it was there, the scale at which EMNIST's blur (sigma 1) and border (2 pixels) were applied. A small
# letter is framed with more border and blur around it, as EMNIST frames NIST's small letters (a bare `i` fills less
# of the frame than an `l`). Calibrated on real letters of the train part, and kept to the lengths EMNIST's letters
# span: no shorter than its shortest letters are framed, no longer than NIST's 128-pixel frame holds with the blur's
# reach and the border (docs/predict.md).
NIST_STROKE_PIXELS = 4.0
NIST_CHARACTER_PIXELS = (16, 120)
# A letter's own ink is kept as far as 3 sigma of the blur of a letter this many NIST pixels long (the median
# letter is 31) reaches beyond it: its soft edges, not a neighbour's ink.
NIST_TYPICAL_PIXELS = 34
NIST_BLUR_SIGMA = 1.0
NIST_BORDER = 2
# The blur EMNIST's letters show at their edges, measured as edge_blur measures a page's, in NIST's pixels: less
# than the sigma 1 applied, once NIST's binary scans' jagged edges and the bicubic down-sampling are through
# (docs/predict.md). What a letter is blurred to; the region cut around it is the applied blur's.
EMNIST_EDGE_BLUR = 0.8
# A photo's grain steepens the slopes of a letter's edges: they are measured on a copy smoothed by this many pixels
# (and the smoothing taken out again).
EDGE_SMOOTHING = 2.0
# How far, in sigmas, the region cut around a character reaches beyond its ink: 2 (3 read bare strokes, I/i
# against L/l, more as the originals are read, and other letters less: docs/predict.md)
NIST_BLUR_REACH = 2
SIZE = 28

# A page is worked on at most this many pixels on its longer side (a phone photo of 4000x3000 is reduced): a word's
# letters are still hundreds of pixels tall, and the shading estimate takes a second, not a minute.
LARGEST_PAGE = 1600
# Contrast (of 0..1) below which a page holds nothing: a blank sheet, an all-black image, a photo of the dark.
LEAST_CONTRAST = 0.08
# Ink smaller than this many pixels (of the page as worked on) each way is dust, not a letter.
SMALLEST_LETTER = 12
# A component smaller than this share of the letters' height is a dot or a broken-off stroke (joined to the
# letter nearest it), or, far from every letter, a speck or punctuation (dropped).
SMALL_SHARE = 0.35
# A dot or stroke piece joins a letter within this share of the letters' height, horizontally.
JOIN_SHARE = 0.3
# A piece smaller than this share of the letters' height, wholly above their middle, is a dot (of an `i`, a `j`).
DOT_SHARE = 0.5
# Two components whose horizontal extents overlap by at least this share of the narrower one are one letter (an
# `i`'s dot over its stem, the two strokes of an `x` drawn apart).
OVERLAP_SHARE = 0.5


@dataclass
class Letter:
    """One letter found on a page: its 28x28 image as EMNIST would store it upright (uint8, light on black) and
    where it was on the page (row and column slices of the page as read)."""

    image: np.ndarray
    rows: slice
    columns: slice


def read_page(path) -> np.ndarray:
    """The image at `path` as a float array of shape (rows, columns), 0 black to 1 white, turned as its EXIF
    orientation says (a phone's portrait photo stands upright). Not an image, unreadable or truncated: a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist: name an image file (PNG or JPEG)")
    try:
        with Image.open(path) as opened:
            opened.load()  # decodes every pixel now: a truncated file fails here, not later
            image = ImageOps.exif_transpose(opened)
            grey = flatten_alpha(image)
    except UnidentifiedImageError:
        raise UserError(f"{path} is not an image Pillow can read: give a PNG or JPEG photo, scan or drawing") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's word for a truncated or damaged file
        raise UserError(f"{path} cannot be read as an image ({' '.join(str(exc).split()) or type(exc).__name__}): "
                        f"it is damaged or cut short; save or copy it again") from None
    scale = LARGEST_PAGE / max(grey.size)
    if scale < 1:
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32) / 255.0


def flatten_alpha(image: Image.Image) -> Image.Image:
    """An 8-bit greyscale image; a transparent drawing laid on a background that its strokes stand out from (white
    under dark strokes, black under light ones)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), np.float32) / 255.0
        grey = np.asarray(rgba.convert("L"), np.float32) / 255.0
        strokes = grey[alpha > 0.5]
        paper = 1.0 if not strokes.size or strokes.mean() < 0.5 else 0.0
        return Image.fromarray(np.round(255 * (alpha * grey + (1 - alpha) * paper)).astype(np.uint8))
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # a scanner's 16-bit grey: scaled, not clipped
        values = np.asarray(image, np.float64)
        return Image.fromarray(np.round(255 * values / max(values.max(), 1e-9)).astype(np.uint8))
    return image.convert("L")


def ink_image(page: np.ndarray, path) -> np.ndarray:
    """The page with its paper taken away: ink bright (1 at a stroke's typical intensity), paper 0, whichever way
    round the page was; the paper's shading, estimated at a scale larger than the strokes, subtracted first. A page
    of one shade, or with nothing standing out from its paper, is a UserError."""
    # (a letter on a photo of a whole sheet may cover a thousandth of it: the extremes are its ink)
    low, median, high = np.percentile(page, [0.01, 50, 99.99])
    if high - low < LEAST_CONTRAST:
        shade = "all black" if median < 0.25 else "blank" if median > 0.75 else "all one shade"
        raise UserError(f"{path} is {shade} (no ink on it): photograph a letter or a word, dark on light paper or "
                        f"light on dark")
    # The ink is what stands out from the paper around it; the paper is most of the page. Against a smooth copy of
    # the page (light that changes across it changes it too), the ink's outliers are dark or light: whichever lie
    # farther out.
    residual = page - ndimage.gaussian_filter(page, max(page.shape) / 8, mode="reflect")
    darkest, lightest = np.percentile(residual, [0.1, 99.9])
    ink = 1.0 - page if -darkest > lightest else page
    # The paper's shading: what is left of the page once every stroke is taken out by a grey opening wider than
    # the strokes (first at the page's scale, then at the strokes' own, measured on the first pass), smoothed.
    smooth = ndimage.gaussian_filter(ink, 1.5)  # the opening's minimum would follow the grain, not the paper
    flattened = ink - paper_shading(smooth, max(ink.shape) // 4)
    floor, level = paper_and_ink_levels(flattened)
    width = stroke_width(ndimage.gaussian_filter(flattened, 1.0) > (floor + level) / 2)
    flattened = ink - paper_shading(smooth, int(6 * width) + 3)
    floor, level = paper_and_ink_levels(flattened)
    if level - floor < LEAST_CONTRAST:
        raise UserError(f"{path} is blank (nothing stands out from its paper): photograph a letter or a word, dark on "
                        f"light paper or light on dark")
    return np.clip((flattened - floor) / (level - floor), 0, 1)


def paper_and_ink_levels(flattened: np.ndarray) -> tuple[float, float]:
    """(the level below which a pixel is paper, however grainy; a stroke's typical level) of a page whose paper's
    shading was taken away, measured on a smoothed copy (the grain averaged out). The paper is most of the page,
    so 4 of its standard deviations (from the median absolute deviation) above the median is still paper. The
    strokes are what is brighter than half the brightest ink (the 99.99th percentile: a letter on a photo of a
    whole sheet still covers more of it), and their typical level is the 75th percentile of those."""
    smooth = ndimage.gaussian_filter(flattened, 1.5)
    median = float(np.median(smooth))
    floor = median + 4 * max(1.4826 * float(np.median(np.abs(smooth - median))), 0.005)
    top = float(np.percentile(smooth, 99.99))
    strokes = smooth[smooth > (floor + top) / 2]
    return floor, float(np.percentile(strokes, 75)) if strokes.size else floor


def paper_shading(ink: np.ndarray, size: int) -> np.ndarray:
    """The paper under the ink: a grey opening of `size` pixels (which removes any bright stroke narrower), then a
    median and a Gaussian smoothing of the same scale, so that a gap in the paper is bridged smoothly. Computed on
    a reduced copy where `size` is large, as the shading varies slowly."""
    size = max(3, size)
    step = max(1, size // 12)
    small = ink[::step, ::step]
    window = max(3, size // step)
    background = ndimage.grey_opening(small, size=(window, window), mode="nearest")
    background = ndimage.gaussian_filter(background, window / 2, mode="nearest")
    if step > 1:
        background = ndimage.zoom(background, (ink.shape[0] / small.shape[0], ink.shape[1] / small.shape[1]),
                                  order=1, mode="nearest")[: ink.shape[0], : ink.shape[1]]
        background = np.pad(background, ((0, ink.shape[0] - background.shape[0]),
                                         (0, ink.shape[1] - background.shape[1])), mode="edge")
    return background


def stroke_width(mask: np.ndarray) -> float:
    """The ink's typical stroke width in pixels. Across a stroke of width w, a pixel's distance to the paper rises
    from 1 at its edge to w / 2 at its middle, (w / 2 + 1) / 2 on average, whatever the stroke's length (its ends
    count little, where the edge's share of the area counts them fully), so w is four times the mean less 2."""
    if not mask.any():
        return 1.0
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return max(1.0, 4 * float(distance[mask].mean()) - 2)


def find_letters(ink: np.ndarray, path) -> list[np.ndarray]:
    """The letters of an ink image, left to right, each a boolean mask of its strokes. Strokes are the connected
    components of the ink (a hysteresis threshold: what is half as bright as a stroke, connected to what is
    brighter than half, so that a faint join does not break a letter in two); pieces closer than a stroke's
    width are one, and a dot or a broken-off piece joins the letter it overlaps or stands nearest (join_pieces)."""
    smoothed = ndimage.gaussian_filter(ink, 1.0)  # a photo's grain would break the strokes into specks
    faint, strokes = smoothed > 0.25, smoothed > 0.5
    labels, count = ndimage.label(faint, structure=np.ones((3, 3)))
    has_stroke = np.zeros(count + 1, bool)
    has_stroke[np.unique(labels[strokes])] = True
    has_stroke[0] = False
    mask = has_stroke[labels]
    width = stroke_width(strokes)
    # specks of grain or dust: less ink than a quarter of a stroke's square (an i's dot has about a whole one)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    mask &= areas[labels] >= max(4.0, width * width / 4)
    if not mask.any():
        raise UserError(f"no character found in {path}: photograph a letter or a word larger, dark on light paper "
                        f"or light on dark")
    # pieces less than half a stroke's width apart are one (a letter whose pen skipped)
    near = ndimage.binary_dilation(mask, iterations=max(1, round(width / 4)))
    pieces, count = ndimage.label(near, structure=np.ones((3, 3)))
    pieces[~mask] = 0
    boxes = ndimage.find_objects(pieces)
    heights = np.array([extent(rows) for rows, _ in boxes])
    height = float(np.median(heights[heights >= 0.5 * heights.max()]))  # the letters', not their dots'
    groups = join_pieces(boxes, height)
    if not groups:
        raise UserError(f"no character found in {path} (only specks smaller than {SMALLEST_LETTER} pixels): "
                        f"photograph a letter or a word larger, dark on light paper or light on dark")
    letters = [np.isin(pieces, [i + 1 for i in group]) for group in groups]
    return sorted(letters, key=lambda letter: np.flatnonzero(letter.any(axis=0))[0])


def extent(span: slice) -> int:
    return span.stop - span.start


def join_pieces(boxes: list[tuple[slice, slice]], height: float) -> list[list[int]]:
    """Which components make one letter, as lists of indices into `boxes` ((rows, columns) slices), `height` being
    the letters' height. Components whose horizontal extents overlap by OVERLAP_SHARE of the narrower are one
    letter. A group of pieces that holds no letter-sized one joins the letter horizontally nearest, within
    JOIN_SHARE of the height: a dot (smaller than DOT_SHARE of the height and wholly above the letters' middle: the
    dot of an `i` or a `j` beside its stem) or a small piece (below SMALL_SHARE, or SMALLEST_LETTER pixels: a
    broken-off stroke). A small piece far from every letter is a speck or punctuation, and dropped."""
    parent = list(range(len(boxes)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (_, a) in enumerate(boxes):
        for j, (_, b) in enumerate(boxes[:i]):
            if min(a.stop, b.stop) - max(a.start, b.start) >= OVERLAP_SHARE * min(extent(a), extent(b)):
                parent[root(i)] = root(j)
    size = [max(extent(rows), extent(columns)) for rows, columns in boxes]
    small = [s < max(SMALL_SHARE * height, SMALLEST_LETTER) for s in size]
    if all(small):
        return []  # specks only
    middle = np.median([(rows.start + rows.stop) / 2 for (rows, _), tiny in zip(boxes, small) if not tiny])
    dot = [s < DOT_SHARE * height and rows.stop <= middle for s, (rows, _) in zip(size, boxes)]
    letter_sized = [not (small[i] or dot[i]) for i in range(len(boxes))]
    groups = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    letters = {key: group for key, group in groups.items() if any(letter_sized[i] for i in group)}
    for key, group in groups.items():
        if key in letters:
            continue
        start, stop = min(boxes[i][1].start for i in group), max(boxes[i][1].stop for i in group)
        gaps = [(max(boxes[j][1].start - stop, start - boxes[j][1].stop, 0), other)
                for other, members in letters.items() for j in members]
        if gaps and min(gaps)[0] <= JOIN_SHARE * height:
            letters[min(gaps)[1]] = letters[min(gaps)[1]] + group
        elif not all(small[i] for i in group):
            letters[key] = group  # a letter of its own: a dot far from every letter is still something written
    return list(letters.values())


def emnist_frame(letter: np.ndarray) -> np.ndarray:
    """One letter (float, ink bright 0..1, nothing else in the image) as EMNIST's makers framed a NIST character:
    Gaussian blur, the region around the character cut out, centred in a square with its aspect ratio kept and a
    border, down-sampled to 28x28 by bicubic interpolation, intensities scaled to 0..255. The blur's sigma and the
    border are NIST's in NIST's pixels, scaled by this letter's size against a NIST character's."""
    character = letter > 0.5  # what a sharp scan would hold: the ink at least half a stroke's
    if not character.any():
        character = letter > 0
    rows, columns = np.flatnonzero(character.any(axis=1)), np.flatnonzero(character.any(axis=0))
    longer = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    pixels_per_nist_pixel = longer / nist_length(character)
    # NIST's scans were sharp (binary); a photo's lens, or a drawing program's soft brush, has blurred the
    # letter's edges already: only the blur it lacks is added (blurs add as the squares of their sigmas)
    wanted = EMNIST_EDGE_BLUR * pixels_per_nist_pixel
    sigma = np.sqrt(max(wanted ** 2 - edge_blur(letter) ** 2, 0.0))
    # the region the blurred character covers: its box widened by the blur's reach (2 sigma, where a blurred
    # edge has faded to 2% of a stroke), then the border around it
    reach = int(round(NIST_BLUR_REACH * NIST_BLUR_SIGMA * pixels_per_nist_pixel))
    border = int(round(NIST_BORDER * pixels_per_nist_pixel))
    pad = reach + border + 1
    blurred = ndimage.gaussian_filter(np.pad(letter.astype(np.float32), pad), sigma, truncate=3.0)
    region = blurred[rows[0] + pad - reach: rows[-1] + pad + reach + 1,
                     columns[0] + pad - reach: columns[-1] + pad + reach + 1]
    side = max(region.shape) + 2 * border
    square = np.zeros((side, side), np.float32)
    top, left = (side - region.shape[0]) // 2, (side - region.shape[1]) // 2
    square[top: top + region.shape[0], left: left + region.shape[1]] = region
    small = Image.fromarray(square, mode="F").resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    image = np.clip(np.asarray(small), 0, None)
    return np.round(255 * image / max(float(image.max()), 1e-6)).astype(np.uint8)


def nist_length(character: np.ndarray) -> float:
    """How many of NIST's pixels a character (its ink, a boolean mask) would have spanned there on its longer side:
    its length in stroke widths, in NIST's pens' strokes."""
    rows, columns = np.flatnonzero(character.any(axis=1)), np.flatnonzero(character.any(axis=0))
    longer = max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1)
    low, high = NIST_CHARACTER_PIXELS
    return float(np.clip(NIST_STROKE_PIXELS * longer / stroke_width(character), low, high))


def edge_blur(letter: np.ndarray) -> float:
    """The sigma, in pixels, of the Gaussian blur a letter's edges show (0..1 ink): across a blurred sharp edge
    the ink rises with a slope of 1 / (sigma * sqrt(2 pi)) where it is half-way, so the slope's median at the
    half-way pixels gives sigma. Measured on a copy smoothed by EDGE_SMOOTHING, whose square is then taken away
    (blurs add as the squares of their sigmas): a photo's grain would steepen the slopes."""
    smooth = ndimage.gaussian_filter(letter.astype(np.float64), EDGE_SMOOTHING)
    rows, columns = np.gradient(smooth)
    slope = np.hypot(rows, columns)[(smooth > 0.35) & (smooth < 0.65)]
    if slope.size < 10:
        return 0.0
    measured = 1 / (np.sqrt(2 * np.pi) * max(float(np.median(slope)), 1e-6))
    return float(np.sqrt(max(measured ** 2 - EDGE_SMOOTHING ** 2, 0.0)))


def letters_of_page(page: np.ndarray, path) -> list[Letter]:
    """Every letter of a page (as read_page reads the image at `path`), left to right, as EMNIST would store it
    (upright). A page with no ink, or none shaped like a character, is a UserError naming `path`."""
    return [Letter(emnist_frame(ink), rows, columns) for ink, rows, columns in letter_inks(page, path)]


def letter_inks(page: np.ndarray, path) -> list[tuple[np.ndarray, slice, slice]]:
    """Every letter of a page, left to right, before EMNIST's framing: its own ink (0..1, its soft edges kept as
    far as the blur will reach, nothing of its neighbours) and the rows and columns of the page it was cut from."""
    ink = ink_image(page, path)
    letters = []
    for mask in find_letters(ink, path):
        rows, columns = ndimage.find_objects(mask.astype(np.int8))[0]
        # its soft edges (NIST_TYPICAL_PIXELS)
        reach = int(np.ceil(3 * NIST_BLUR_SIGMA * max(extent(rows), extent(columns)) / NIST_TYPICAL_PIXELS)) + 2
        rows = slice(max(rows.start - reach, 0), rows.stop + reach)
        columns = slice(max(columns.start - reach, 0), columns.stop + reach)
        own = ndimage.binary_dilation(mask[rows, columns], iterations=reach)
        letters.append((np.where(own, ink[rows, columns], 0), rows, columns))
    return letters
