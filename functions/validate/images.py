"""Image header check: a pixel limit read from the first bytes, before anything is decoded."""

from __future__ import annotations

import io

from common.images import BOMB_ERRORS, DECODE_ERRORS, DECODERS, open_image, pixel_limit, too_large


def check_declared_size(prefix: bytes, content_type: str, max_pixels: int) -> None:
    """Refuse an image whose header declares too many pixels.

    A header that does not fit in ``prefix`` proves nothing either way: the thumbnail step's decode, which
    also checks every byte of the pixel data, enforces the same limit then.
    """
    if content_type not in DECODERS:
        return  # not an image type: its signature, already matched, is the check
    try:
        with (
            pixel_limit(max_pixels),
            open_image(io.BytesIO(prefix), [DECODERS[content_type]]) as image,
        ):
            width, height = image.size
    except BOMB_ERRORS as error:
        raise too_large(max_pixels) from error
    except DECODE_ERRORS:
        return
    if width * height > max_pixels:
        raise too_large(max_pixels, (width, height))
