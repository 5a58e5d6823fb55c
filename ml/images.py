"""Image intake: turn the bytes a user sent into a clean RGB picture, or say plainly why not.

Photos reach the bot from phones, scanners, messengers and web pages, so every odd corner of the
image formats shows up sooner or later: rotated JPEGs that rely on an EXIF tag, CMYK scans, 16-bit
grayscale PNGs, transparent stickers, animated GIFs, PNG data under a `.jpg` name, files cut off by a
flaky upload, and the occasional decompression bomb. Everything downstream (the model, the drift
statistics, the photo store's thumbnails) wants one thing: a fully decoded RGB image the right way
up. This module is the single place that gets there, and the single place that decides which files
to refuse, with a message fit to send back to the user.

Only Pillow and numpy: no torch, so the bot can validate a photo before the model is even loaded.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "ImageRejected",
    "ImageStatistics",
    "RejectionCode",
    "crop_image",
    "exposure_corrected",
    "too_big",
    "image_statistics",
    "load_image",
    "sniff_format",
]

log = logging.getLogger(__name__)

# Long side of the thumbnail the statistics are computed on: enough to estimate means and spreads,
# small enough that statistics cost next to nothing beside classification.
_STATS_SIDE = 64

# ITU-R BT.601 luma weights, the same ones Pillow uses for mode "L".
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

RejectionCode = Literal["empty", "too_big", "too_many_pixels", "truncated", "not_an_image", "bad_crop"]


class ImageRejected(ValueError):
    """A file we will not classify; `message` is meant for the user, `code` for logs and metrics."""

    def __init__(self, code: RejectionCode, message: str) -> None:
        super().__init__(message)
        self.code: RejectionCode = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImageRejected], tuple[RejectionCode, str]]:
        # Exceptions pickle by re-calling the class with .args (just the message here); process
        # pools and loggers that pickle need both arguments.
        return (type(self), (self.code, self.message))


@dataclass(frozen=True, slots=True)
class ImageStatistics:
    """Cheap summary of a photo, compared over time to notice when incoming photos change.

    brightness is the mean luma and contrast its standard deviation, both on a 0-1 scale;
    saturation is the mean HSV saturation, 0-1. width and height are the full image's size.
    """

    width: int
    height: int
    brightness: float
    contrast: float
    saturation: float


def load_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode `data` into an upright RGB image, fully loaded; raise ImageRejected for anything else.

    Sizes are checked before any pixel is decoded: the byte count first, then the pixel count
    from the header, so a small file that unpacks to gigabytes is refused without allocating it.
    Pillow's own bomb check (with its global `Image.MAX_IMAGE_PIXELS`, left untouched) still
    applies on top, so `max_pixels` above roughly 179 million cannot take effect.

    The format comes from the bytes, never from a file name. Truncated files are refused rather
    than padded with grey: a half-grey photo would still be classified, confidently and wrongly.
    """
    if not data:
        raise ImageRejected("empty", "This file is empty. Please send the photo again.")
    if len(data) > max_bytes:
        raise too_big(len(data), max_bytes)

    img = _open(data, max_pixels)
    try:
        img.load()
    except Exception as exc:
        # Untrusted bytes reach a dozen C decoders, which fail in many ways (OSError, SyntaxError,
        # struct.error, ValueError, ...). Each means the same to the user, so all become one error.
        raise _decode_failure(data, exc) from exc

    _make_upright(img)
    try:
        return _to_rgb(img)
    except Exception as exc:  # an exotic mode Pillow cannot convert (LAB, HSV): unreadable for us
        raise ImageRejected("not_an_image", "This image uses a colour format I can't read.") from exc


def too_big(size: int, max_bytes: int) -> ImageRejected:
    """The refusal of a file of ``size`` bytes (a caller that knows the size need not read it all)."""
    return ImageRejected(
        "too_big", f"This file is too big ({_megabytes(size)} MB); the limit is {_megabytes(max_bytes)} MB."
    )


def crop_image(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The part ``box`` = (x, y, width, height) of the upright photo, in its pixels (an app that lets
    people frame the dog sends the frame); raise ImageRejected when the box is not inside the photo."""
    x, y, width, height = box
    if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > img.width or y + height > img.height:
        raise ImageRejected(
            "bad_crop",
            f"The crop {x},{y},{width},{height} (x,y,width,height) is not inside the "
            f"{img.width}x{img.height} photo.",
        )
    return img.crop((x, y, x + width, y + height))


# A photo is underexposed when, in every colour channel, even its brightest 1 % of pixels stays
# below this share of full scale: a kennel shot at night. Ordinary photos, black dogs included, have
# highlights above it (bench/bench_dark.py counts the dev photos it touches).
UNDEREXPOSED_HIGHLIGHTS = 0.5
# A stretched copy is made at most about this many pixels on its short side (whole-factor shrink):
# the model reads 224-260 pixels, and a full copy of a 40-megapixel photo would cost 120 MB.
_STRETCH_SHORT_SIDE = 1024


def exposure_corrected(img: Image.Image) -> Image.Image:
    """``img`` stretched to the full range (``ImageOps.autocontrast``, 1 % cut at each end) when it is
    underexposed, else ``img`` itself, untouched.

    Applied before the model only (``ml.predictor``), never to the stored bytes or their statistics,
    so drift still sees the darker photos. Leaving every other photo exactly as it was keeps stored
    embeddings, heads and drift references valid. Measured in bench/bench_dark.py: darkening cost
    the base model 2.6 points of top-1 on the dev photos, and the stretch wins them back.
    """
    counts = np.asarray(img.histogram(), dtype=np.int64)
    if img.mode != "RGB" or counts.size != 3 * 256:
        return img
    cumulative = counts.reshape(3, 256).cumsum(axis=1)
    # Per channel, the value 99 % of the pixels are at or below.
    highlights = (cumulative < 0.99 * cumulative[:, -1:]).sum(axis=1)
    if highlights.max() >= UNDEREXPOSED_HIGHLIGHTS * 255:
        return img
    factor = min(img.size) // _STRETCH_SHORT_SIDE
    if factor >= 2:
        img = img.reduce(factor)
    return ImageOps.autocontrast(img, cutoff=1)


def image_statistics(img: Image.Image) -> ImageStatistics:
    """Brightness, contrast and saturation of `img`, estimated on a small thumbnail."""
    width, height = img.size
    scale = _STATS_SIDE / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # reducing_gap lets Pillow shrink by whole factors first: fast on large photos.
        img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0

    luma = rgb @ _LUMA_WEIGHTS
    high = rgb.max(axis=2)
    low = rgb.min(axis=2)
    saturation = np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)
    return ImageStatistics(
        width=width,
        height=height,
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        saturation=float(saturation.mean()),
    )


# Magic numbers of the formats people actually send. Names follow Pillow's `Image.format`.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
)
# ISO base media "ftyp" brands: iPhones send HEIC when a photo is shared as a file.
_FTYP_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"hevc": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def sniff_format(data: bytes) -> str | None:
    """Name the file format from its first bytes ("JPEG", "PNG", "HEIC", ...), or None if unknown.

    Meant for logs and for a helpful refusal message; reads a few bytes, decodes nothing, and so
    never trips Pillow's decompression-bomb warning.
    """
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12])
    return None


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only, and refuse images whose pixel count is too large to decode safely."""
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses (or, with warnings as errors, warns about) sizes beyond its own limit
        # before we see the header; anything over that limit is over ours too.
        raise ImageRejected(
            "too_many_pixels",
            f"This image is too large (over {_megapixels(Image.MAX_IMAGE_PIXELS)} megapixels); "
            f"the limit is {_megapixels(max_pixels)} megapixels.",
        ) from exc
    except Exception as exc:  # any header parser failure: see the note in load_image
        raise _decode_failure(data, exc) from exc

    width, height = img.size
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"This image is too large ({_megapixels(width * height)} megapixels); "
            f"the limit is {_megapixels(max_pixels)} megapixels.",
        )
    if width < 1 or height < 1:
        raise _unreadable(data)
    return img


def _make_upright(img: Image.Image) -> None:
    """Apply the EXIF orientation tag in place, so the model sees the dog as the owner's phone showed it.

    Invalid tag values (0 is common, from some cameras and editors) mean "as stored". A broken EXIF
    block is no reason to refuse a photo whose pixels decoded fine, so it is logged and the image
    is used as stored.
    """
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # metadata only: the pixels are already decoded and valid
        log.warning("Ignoring unreadable EXIF orientation in a %s image", img.format, exc_info=True)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparent areas become white, as on a chat background."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # Pillow's I->L conversion clips at 255 instead of scaling; 16-bit scans would turn white.
        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(wide / 257.0, 0, 255).round().astype(np.uint8))  # mode L
    elif img.mode == "F":
        img = img.convert("L")

    if img.mode in ("RGBa", "La"):
        img = img.convert(img.mode[:-1] + "A")  # un-premultiply before compositing
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # convert() returns a new image even for RGB input, detached from the source buffer and from
    # any further animation frames.
    return img.convert("RGB")


def _decode_failure(data: bytes, exc: Exception) -> ImageRejected:
    if "truncated" in str(exc).lower() or _riff_truncated(data):
        return ImageRejected(
            "truncated", "This image is cut off (the file is incomplete). Please send it again."
        )
    return _unreadable(data)


def _riff_truncated(data: bytes) -> bool:
    """WEBP's decoder reports a short file only as a generic error; its RIFF header knows better."""
    if sniff_format(data) != "WEBP":
        return False
    (declared,) = struct.unpack("<I", data[4:8])
    return declared + 8 > len(data)


def _unreadable(data: bytes) -> ImageRejected:
    fmt = sniff_format(data)
    if fmt in ("HEIC", "HEIF"):
        return ImageRejected(
            "not_an_image",
            "This is a HEIC photo, which I can't read. Please send it as a photo rather than as a "
            "file, or convert it to JPEG.",
        )
    if fmt is not None:
        return ImageRejected("not_an_image", f"This {fmt} image is damaged or in a form I can't read.")
    return ImageRejected("not_an_image", "This file is not an image I can read.")


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.1f}".removesuffix(".0")


def _megapixels(n_pixels: int) -> str:
    megapixels = n_pixels / 1_000_000
    if megapixels < 1:  # only with a deliberately tiny limit, but "0 megapixels" would read as a bug
        return f"{megapixels:.2g}"
    return f"{megapixels:.1f}".removesuffix(".0")
