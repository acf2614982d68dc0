"""Image checks: a pixel limit and a full decode, so bombs, cut-off files and disguised scripts fail."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from PIL import Image, ImageSequence

from common.errors import FileRejected

# The Pillow plugin that must decode each image type we accept; HEIC has none here (see logic.py).
DECODERS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}

# What Pillow raises for undecodable data. MemoryError is left out: a sizing fault, not a bad file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


@contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Make Pillow refuse, not merely warn about, any image above ``max_pixels`` while opening."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _too_large(width: int, height: int, max_pixels: int) -> FileRejected:
    return FileRejected(
        f"image is {width}x{height} pixels, more than the {max_pixels} allowed", code="IMAGE_TOO_LARGE"
    )


def check_declared_size(prefix: bytes, content_type: str, max_pixels: int) -> None:
    """Refuse an image whose header declares too many pixels, before downloading the rest of it.

    A header that does not fit in ``prefix`` proves nothing either way; the full decode decides then.
    """
    try:
        with (
            pixel_limit(max_pixels),
            Image.open(io.BytesIO(prefix), formats=[DECODERS[content_type]]) as image,
        ):
            width, height = image.size
    except _BOMB_ERRORS as error:
        raise FileRejected(f"image has more than {max_pixels} pixels", code="IMAGE_TOO_LARGE") from error
    except DECODE_ERRORS:
        return
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)


def verify_image(stream: IO[bytes], content_type: str, max_pixels: int) -> tuple[int, int]:
    """Decode the whole image (every frame up to one image's worth of pixels); returns its size."""
    try:
        with pixel_limit(max_pixels), Image.open(stream, formats=[DECODERS[content_type]]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise _too_large(width, height, max_pixels)
            if image.format == "JPEG":
                # Decoding at 1/8 scale still reads every entropy-coded block, so damage and truncation
                # show, at a fraction of the time and memory of a full-size decode.
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            decoded_pixels = 0
            for frame in ImageSequence.Iterator(image):
                frame.load()
                decoded_pixels += frame.width * frame.height
                if decoded_pixels >= max_pixels:
                    break
    except _BOMB_ERRORS as error:
        raise FileRejected(f"image has more than {max_pixels} pixels", code="IMAGE_TOO_LARGE") from error
    except DECODE_ERRORS as error:
        raise FileRejected(f"image does not decode: {error}", code="CORRUPT_IMAGE") from error
    return width, height
