"""Pillow under guard: the decoder for each image type, its pixel limit, and what bad data raises."""

from __future__ import annotations

import functools
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from PIL import Image, ImageFile

from common.errors import FileRejected

# The Pillow plugin that decodes each image type we accept. HEIF's comes from pi-heif (libheif and
# libde265, decoders only), loaded on first use by ``open_image``.
DECODERS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
}

# What Pillow raises for undecodable data. MemoryError is left out: a sizing fault, not a bad file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)
BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def open_image(source: IO[bytes], formats: Sequence[str]) -> ImageFile.ImageFile:
    """Pillow's lazy ``Image.open``, trying only ``formats``: the header is read, the pixels when loaded."""
    if "HEIF" in formats:
        _register_heif()
    return Image.open(source, formats=list(formats))


@functools.cache
def _register_heif() -> None:
    import pi_heif

    # Only the primary image: no embedded previews, depth maps or auxiliary images are read. libheif
    # applies the container's rotation and mirroring and resets the EXIF orientation to match.
    pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


@contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow refuses, rather than merely warns about, images above ``max_pixels`` while this is active."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def too_large(max_pixels: int, size: tuple[int, int] | None = None) -> FileRejected:
    described = f"is {size[0]}x{size[1]} pixels," if size else "has"
    return FileRejected(f"image {described} more than the {max_pixels} allowed", code="IMAGE_TOO_LARGE")


def corrupt(error: BaseException) -> FileRejected:
    return FileRejected(f"image does not decode: {error}", code="CORRUPT_IMAGE")
