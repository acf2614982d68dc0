"""Image dimensions and a short, privacy-safe EXIF subset, read from the header without decoding pixels."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import IO

from PIL import ExifTags, Image, TiffImagePlugin

from common.images import DECODE_ERRORS, DECODERS, open_image

# The image types whose header we read, each with its Pillow plugin.
HEADER_FORMATS = DECODERS

# The only EXIF fields ever returned: camera, exposure and orientation. Never GPS, serial numbers,
# owner names or maker notes.
_IFD0_FIELDS = {
    "Make": ExifTags.Base.Make,
    "Model": ExifTags.Base.Model,
    "Orientation": ExifTags.Base.Orientation,
}
_EXIF_IFD_FIELDS = {
    "DateTimeOriginal": ExifTags.Base.DateTimeOriginal,
    "ExposureTime": ExifTags.Base.ExposureTime,
    "FNumber": ExifTags.Base.FNumber,
    "ISOSpeedRatings": ExifTags.Base.ISOSpeedRatings,
    "FocalLength": ExifTags.Base.FocalLength,
    "LensModel": ExifTags.Base.LensModel,
}
_MAX_TEXT = 128


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed, i.e. after the EXIF orientation is applied
    height: int
    exif: dict[str, str | int | float] = field(default_factory=dict)


def read_image_info(source: IO[bytes], content_type: str) -> ImageInfo | None:
    """Dimensions and EXIF subset from the image header in ``source``; None when it cannot be parsed."""
    try:
        with warnings.catch_warnings():
            # Only the header is read, never the pixels: size limits are the validate step's business.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_image(source, [HEADER_FORMATS[content_type]]) as image:
                width, height = image.size
                raw_exif = image.info.get("exif")
    except (Image.DecompressionBombError, *DECODE_ERRORS):
        return None
    exif = _exif_subset(raw_exif) if isinstance(raw_exif, bytes) and raw_exif else {}
    if exif.get("Orientation") in (5, 6, 7, 8):  # rotated a quarter turn: shown the other way round
        width, height = height, width
    return ImageInfo(width, height, exif)


def _exif_subset(raw: bytes) -> dict[str, str | int | float]:
    exif = Image.Exif()
    try:
        exif.load(raw)
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except DECODE_ERRORS:
        return {}
    subset: dict[str, str | int | float] = {}
    for name, tag in _IFD0_FIELDS.items():
        value = _plain(exif.get(tag))
        if value is not None:
            subset[name] = value
    for name, tag in _EXIF_IFD_FIELDS.items():
        value = _plain(exif_ifd.get(tag))
        if value is not None:
            subset[name] = value
    orientation = subset.get("Orientation")
    if not (isinstance(orientation, int) and 1 <= orientation <= 8):
        subset.pop("Orientation", None)
    return subset


def _plain(value: object) -> str | int | float | None:
    """A JSON-safe scalar: rationals as floats, first of a list, trimmed text; None when meaningless."""
    if isinstance(value, tuple | list):
        return _plain(value[0]) if value else None
    if isinstance(value, TiffImagePlugin.IFDRational):
        if value.denominator == 0:
            return None
        value = float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()[:_MAX_TEXT]
        return text or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return None
