"""Image intake: every format quirk users send either becomes an upright RGB image or a clear refusal."""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import default_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, features

from dogbot.app import intake_rules
from ml import images
from ml.images import ImageRejected, ImageStatistics, image_statistics, sniff_format

# The bot's limits (Settings' defaults); a test may name its own.
RULES = intake_rules(default_settings())
load_image = partial(images.load_image, max_bytes=RULES.max_bytes, max_pixels=RULES.max_pixels)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Random pixels: they compress badly, so encoded files have plenty of data to cut or mutate."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def assert_colour(img: Image.Image, xy: tuple[int, int], expected: tuple[int, int, int], tol: int = 12):
    actual = img.getpixel(xy)
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True)), (xy, actual, expected)


def rejection(data: bytes, **limits: int) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        load_image(data, **limits)
    return info.value


# --- EXIF orientation -----------------------------------------------------------------------------

# What the viewer should see: wider than tall, with four coloured quadrants, so any rotation or
# mirroring shows up both in the size and in which colour lands in which corner.
DISPLAYED = np.zeros((24, 48, 3), dtype=np.uint8)
DISPLAYED[:12, :24] = RED
DISPLAYED[:12, 24:] = GREEN
DISPLAYED[12:, :24] = BLUE
DISPLAYED[12:, 24:] = YELLOW

# How a camera stores that picture for each EXIF orientation value, written from the EXIF
# specification with numpy rather than with Pillow's own transpose table.
STORED_FOR_ORIENTATION: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    0: lambda a: a,  # invalid value: treat as stored
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, 1),  # camera turned clockwise: stored turned anticlockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, -1),  # camera turned anticlockwise: stored turned clockwise
}


@pytest.mark.parametrize("orientation", sorted(STORED_FOR_ORIENTATION))
def test_exif_orientation_is_applied(orientation: int) -> None:
    stored = Image.fromarray(np.ascontiguousarray(STORED_FOR_ORIENTATION[orientation](DISPLAYED)))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode(stored, "JPEG", exif=exif, quality=95)

    img = load_image(data)

    assert img.mode == "RGB"
    assert img.size == (48, 24)
    assert_colour(img, (6, 6), RED)
    assert_colour(img, (42, 6), GREEN)
    assert_colour(img, (6, 18), BLUE)
    assert_colour(img, (42, 18), YELLOW)


def test_exif_orientation_stored_as_long_is_still_applied() -> None:
    # Some writers store the SHORT tag as LONG; Pillow reads the value all the same.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01" + b"\x01\x12\x00\x04\x00\x00\x00\x01\x00\x00\x00\x06"
    data = encode(Image.new("RGB", (20, 10), RED), "JPEG", exif=b"Exif\x00\x00" + tiff + b"\x00" * 4)
    assert load_image(data).size == (10, 20)


@pytest.mark.parametrize(
    "exif",
    [
        pytest.param(b"Exif\x00\x00garbage garbage garbage", id="garbage"),
        pytest.param(b"Exif\x00\x00MM\x00\x2a", id="header-only"),
        pytest.param(
            b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x02\x00\x00\x00\x02ab\x00\x00",
            id="orientation-as-text",
        ),
        pytest.param(
            b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x09\x00\x00",
            id="orientation-9",
        ),
        pytest.param(b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\x08", id="offset-past-end"),
    ],
)
# Pillow warns about the last one while reading the header; in production that is a log line and
# the photo loads. (With warnings as errors the same file would be refused, which is also safe.)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_broken_exif_does_not_stop_a_photo(exif: bytes) -> None:
    img = load_image(encode(Image.new("RGB", (20, 10), RED), "JPEG", exif=exif))
    assert img.mode == "RGB"
    assert img.size == (20, 10)


# --- modes and formats ----------------------------------------------------------------------------


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)


def grayscale_jpeg() -> bytes:
    return encode(Image.new("L", (16, 16), 128), "JPEG", quality=95)


def bilevel_png() -> bytes:
    return encode(Image.new("1", (16, 16), 1), "PNG")


def sixteen_bit_png() -> bytes:
    # Mid-grey in 16 bits: a naive conversion clips it to white instead of scaling it.
    return encode(Image.new("I;16", (16, 16), 32896), "PNG")


def transparent_la_png() -> bytes:
    return encode(Image.new("LA", (16, 16), (0, 0)), "PNG")


def palette_png_with_transparency() -> bytes:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([*BLACK, *RED])
    img.paste(1, (8, 0, 16, 16))
    return encode(img, "PNG", transparency=0)


def palette_gif_with_transparency() -> bytes:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([*BLACK, *RED])
    img.paste(1, (8, 0, 16, 16))
    return encode(img, "GIF", transparency=0)


def rgba(size: tuple[int, int] = (16, 16)) -> Image.Image:
    """Left half fully transparent (black underneath), right half opaque red."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    img.paste((*RED, 255), (size[0] // 2, 0, size[0], size[1]))
    return img


def rgba_png() -> bytes:
    return encode(rgba(), "PNG")


def rgba_webp() -> bytes:
    return encode(rgba(), "WEBP", lossless=True)


def rgb_webp() -> bytes:
    return encode(Image.new("RGB", (16, 16), RED), "WEBP", quality=95)


def animated_gif() -> bytes:
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def animated_png() -> bytes:
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    return encode(first, "PNG", save_all=True, append_images=[second], duration=100)


def progressive_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 64), RED), "JPEG", progressive=True, quality=95)


def tiny_jpeg() -> bytes:
    return encode(Image.new("RGB", (10, 10), RED), "JPEG", quality=95)


def bmp() -> bytes:
    return encode(Image.new("RGB", (16, 16), RED), "BMP")


def tiff() -> bytes:
    return encode(Image.new("RGB", (16, 16), RED), "TIFF")


# (factory, pixel to check, colour expected there)
QUIRKS: dict[str, tuple[Callable[[], bytes], tuple[int, int], tuple[int, int, int]]] = {
    "cmyk-jpeg": (cmyk_jpeg, (8, 8), RED),
    "grayscale-L": (grayscale_jpeg, (8, 8), (128, 128, 128)),
    "bilevel-1": (bilevel_png, (8, 8), WHITE),
    "16-bit-grey": (sixteen_bit_png, (8, 8), (128, 128, 128)),
    "transparent-LA": (transparent_la_png, (8, 8), WHITE),
    "palette-png-transparent-part": (palette_png_with_transparency, (2, 8), WHITE),
    "palette-png-opaque-part": (palette_png_with_transparency, (12, 8), RED),
    "palette-gif-transparent-part": (palette_gif_with_transparency, (2, 8), WHITE),
    "palette-gif-opaque-part": (palette_gif_with_transparency, (12, 8), RED),
    "rgba-png-transparent-part": (rgba_png, (2, 8), WHITE),
    "rgba-png-opaque-part": (rgba_png, (12, 8), RED),
    "rgba-webp-transparent-part": (rgba_webp, (2, 8), WHITE),
    "rgba-webp-opaque-part": (rgba_webp, (12, 8), RED),
    "rgb-webp": (rgb_webp, (8, 8), RED),
    "animated-gif-first-frame": (animated_gif, (8, 8), RED),
    "animated-png-first-frame": (animated_png, (8, 8), RED),
    "progressive-jpeg": (progressive_jpeg, (32, 32), RED),
    "tiny-10x10": (tiny_jpeg, (5, 5), RED),
    "bmp": (bmp, (8, 8), RED),
    "tiff": (tiff, (8, 8), RED),
}


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_quirky_files_become_rgb(quirk: str) -> None:
    factory, xy, expected = QUIRKS[quirk]
    img = load_image(factory())
    assert img.mode == "RGB"
    assert_colour(img, xy, expected)


def test_semi_transparent_pixels_blend_with_white() -> None:
    img = load_image(encode(Image.new("RGBA", (4, 4), (*RED, 128)), "PNG"))
    assert_colour(img, (0, 0), (255, 127, 127), tol=2)


def test_png_saved_under_a_jpg_name_is_read_by_content(tmp_path: Path) -> None:
    path = tmp_path / "dog.jpg"
    path.write_bytes(rgba_png())
    data = path.read_bytes()
    assert sniff_format(data) == "PNG"
    assert load_image(data).mode == "RGB"


def test_result_is_fully_loaded_and_detached() -> None:
    img = load_image(animated_gif())
    assert getattr(img, "n_frames", 1) == 1  # a plain image, not the animation it came from
    assert img.getpixel((0, 0)) == RED


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build has no AVIF codec")
def test_avif() -> None:
    img = load_image(encode(Image.new("RGB", (16, 16), RED), "AVIF", quality=90))
    assert img.mode == "RGB"
    assert_colour(img, (8, 8), RED, tol=30)


# --- refusals -------------------------------------------------------------------------------------


def test_empty_file() -> None:
    assert rejection(b"").code == "empty"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"hello, this is not a photo\n", id="text"),
        pytest.param(b"<!doctype html><html><body>dog</body></html>", id="html"),
        pytest.param(b"%PDF-1.7\n" + b"\x00" * 64, id="pdf"),
        pytest.param(bytes(range(256)) * 4, id="binary"),
    ],
)
def test_non_images(data: bytes) -> None:
    error = rejection(data)
    assert error.code == "not_an_image"
    assert error.message == "This file is not an image I can read."


def test_heic_gets_a_helpful_message() -> None:
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    error = rejection(data)
    assert error.code == "not_an_image"
    assert "HEIC" in error.message


@pytest.mark.parametrize(
    "fmt",
    ["JPEG", "PNG", "GIF", "WEBP"],
)
def test_truncated_files(fmt: str) -> None:
    data = encode(noise((64, 64)), fmt)
    error = rejection(data[: len(data) // 2])
    assert error.code == "truncated"
    assert error.message == "This image is cut off (the file is incomplete). Please send it again."


def test_file_over_the_byte_limit_is_refused_before_decoding() -> None:
    error = rejection(b"\xff\xd8\xff" + b"\x00" * (21 * 1024 * 1024))
    assert error.code == "too_big"
    assert error.message == "This file is too big (21 MB); the limit is 20 MB."


def test_byte_limit_is_configurable() -> None:
    data = tiny_jpeg()
    assert rejection(data, max_bytes=len(data) - 1).code == "too_big"
    assert load_image(data, max_bytes=len(data)).mode == "RGB"


def test_pixel_limit_is_checked_from_the_header() -> None:
    data = encode(Image.new("RGB", (3000, 2000), RED), "PNG")
    error = rejection(data, max_pixels=5_000_000)
    assert error.code == "too_many_pixels"
    assert error.message == "This image is too large (6 megapixels); the limit is 5 megapixels."
    assert load_image(data, max_pixels=6_000_000).size == (3000, 2000)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header is rewritten to claim another size: a cheap bomb header."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    ihdr = data[12:29]  # chunk type + 13 bytes of header data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@pytest.mark.parametrize(
    ("width", "height"),
    [
        pytest.param(7000, 7000, id="over-our-limit"),
        pytest.param(10000, 10000, id="over-pillows-warning-limit"),
        pytest.param(30000, 30000, id="over-pillows-hard-limit"),
    ],
)
def test_bomb_headers_are_refused_without_decoding(width: int, height: int) -> None:
    data = png_claiming(width, height)
    assert len(data) < 200
    assert rejection(data).code == "too_many_pixels"


def test_pillows_own_bomb_limit_still_applies_above_ours() -> None:
    assert rejection(png_claiming(30000, 30000), max_pixels=10**10).code == "too_many_pixels"


def test_real_compressed_bomb() -> None:
    data = encode(Image.new("1", (20000, 20000)), "PNG", optimize=False)
    assert len(data) < 200_000  # 400 million pixels in a file smaller than a phone photo
    error = rejection(data)
    assert error.code == "too_many_pixels"
    assert "megapixels" in error.message


def test_global_pillow_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    rejection(png_claiming(30000, 30000))
    rejection(png_claiming(7000, 7000))
    assert before == Image.MAX_IMAGE_PIXELS


def test_rejection_is_a_value_error_that_pickles() -> None:
    error = rejection(b"")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message) == (error.code, error.message)


# --- never anything but ImageRejected -------------------------------------------------------------

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis folder in the working tree
    suppress_health_check=[HealthCheck.too_slow],
)


def accept_or_reject(data: bytes) -> None:
    try:
        img = load_image(data)
    except ImageRejected as error:
        assert error.code in {"empty", "too_big", "too_many_pixels", "truncated", "not_an_image"}
        assert error.message
    else:
        assert img.mode == "RGB"


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    accept_or_reject(data)


def _valid_files() -> dict[str, bytes]:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    return {
        "JPEG": encode(noise((24, 16)), "JPEG", exif=exif, quality=80),
        "progressive JPEG": encode(noise((24, 16)), "JPEG", progressive=True, quality=80),
        "PNG": rgba_png(),
        "GIF": animated_gif(),
        "WEBP": rgba_webp(),
    }


VALID_FILES = _valid_files()


@pytest.mark.parametrize("fmt", list(VALID_FILES))
@FUZZ
@given(data=st.data())
def test_mutated_files_never_raise_anything_else(fmt: str, data: st.DataObject) -> None:
    original = VALID_FILES[fmt]
    mutated = bytearray(original)
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=8),
        label="byte edits",
    )
    for position, value in edits:
        mutated[position] = value
    cut = data.draw(st.integers(1, len(original)), label="length kept")
    accept_or_reject(bytes(mutated[:cut]))


# --- statistics -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "brightness", "saturation"),
    [(BLACK, 0.0, 0.0), (WHITE, 1.0, 0.0), (RED, 0.299, 1.0), ((128, 128, 128), 128 / 255, 0.0)],
)
def test_statistics_of_flat_images(colour: tuple[int, int, int], brightness: float, saturation: float):
    stats = image_statistics(Image.new("RGB", (30, 20), colour))
    assert stats == ImageStatistics(
        width=30,
        height=20,
        brightness=pytest.approx(brightness, abs=1e-3),
        contrast=pytest.approx(0.0, abs=1e-6),
        saturation=pytest.approx(saturation, abs=1e-6),
    )


def test_statistics_contrast_of_half_black_half_white() -> None:
    img = Image.new("RGB", (4000, 3000), BLACK)
    img.paste(WHITE, (0, 0, 2000, 3000))
    stats = image_statistics(img)
    assert (stats.width, stats.height) == (4000, 3000)  # the original size, not the thumbnail's
    assert stats.brightness == pytest.approx(0.5, abs=0.02)
    assert stats.contrast == pytest.approx(0.5, abs=0.02)


def test_statistics_are_frozen() -> None:
    stats = image_statistics(Image.new("RGB", (2, 2)))
    with pytest.raises(AttributeError):
        stats.brightness = 1.0  # type: ignore[misc]


# --- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (tiny_jpeg(), "JPEG"),
        (rgba_png(), "PNG"),
        (animated_gif(), "GIF"),
        (rgba_webp(), "WEBP"),
        (bmp(), "BMP"),
        (tiff(), "TIFF"),
        (b"\x00\x00\x00\x18ftypheic", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif", "AVIF"),
        (b"hello", None),
        (b"", None),
    ],
)
def test_sniff_format(data: bytes, expected: str | None) -> None:
    assert sniff_format(data) == expected


# --- the real photos ------------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", ["manifest.csv", "other_breeds.csv"])
def test_every_shared_photo_loads_or_is_refused(
    manifest: str, eval_data_dir: Path, shared_manifest: Callable[[str], list[dict[str, str]]]
) -> None:
    problems = []
    for row in shared_manifest(manifest):
        data = (eval_data_dir / row["path"]).read_bytes()
        try:
            img = load_image(data)
        except ImageRejected as error:
            if row["quirks"]:
                problems.append(f"{row['path']} ({row['quirks']}): refused, {error.code}")
            continue
        if img.mode != "RGB":
            problems.append(f"{row['path']}: mode {img.mode}")
        stored = (int(row["width"]), int(row["height"]))
        turned = row["exif_orientation"] in {"5", "6", "7", "8"}
        if img.size != (stored[::-1] if turned else stored):
            problems.append(
                f"{row['path']}: size {img.size}, stored {stored}, EXIF {row['exif_orientation']}"
            )
        if sniff_format(data) != row["format"]:
            problems.append(f"{row['path']}: sniffed {sniff_format(data)}, manifest says {row['format']}")
    assert not problems, "\n".join(problems)


def _gradient(size: tuple[int, int], brightest: int) -> Image.Image:
    """An RGB picture whose values run from 0 to ``brightest`` across it."""
    row = np.linspace(0, brightest, size[0], dtype=np.float32).astype(np.uint8)
    pixels = np.repeat(np.repeat(row[None, :, None], size[1], axis=0), 3, axis=2)
    return Image.fromarray(pixels, "RGB")


def test_only_an_underexposed_photo_is_stretched_before_the_model() -> None:
    ordinary = _gradient((320, 240), 250)
    assert images.exposure_corrected(ordinary) is ordinary  # untouched: its embedding stays the same
    dark = _gradient((320, 240), 100)  # a night shot: even the brightest pixels are below half scale
    stretched = images.exposure_corrected(dark)
    assert stretched.size == dark.size
    assert np.asarray(stretched).max() >= 250 and np.asarray(dark).max() <= 100
    # A photo with highlights above half scale in any channel is not underexposed.
    one_bright_channel = Image.merge("RGB", (dark.getchannel(0), dark.getchannel(1), ordinary.getchannel(2)))
    assert images.exposure_corrected(one_bright_channel) is one_bright_channel


def test_a_huge_dark_photo_is_stretched_on_a_small_copy() -> None:
    huge = _gradient((6000, 4000), 90)  # 24 megapixels: a full-size copy would be 72 MB
    stretched = images.exposure_corrected(huge)
    assert min(stretched.size) <= 2 * 1024 and np.asarray(stretched).max() >= 250
