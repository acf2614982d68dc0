"""One decode, a set of WebP thumbnails: JPEGs downscaled while decoding; upright, sRGB, no metadata.

That decode is also the image's integrity check: data that does not decode is a rejected file.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from PIL import ExifTags, Image, ImageFile, features

from common.images import BOMB_ERRORS, DECODE_ERRORS, DECODERS, corrupt, open_image, pixel_limit, too_large
from thumbnails.quality import REDUCING_GAP, WEBP_METHOD, WEBP_QUALITY

# The types we make thumbnails of, each with its Pillow plugin: every image type we accept.
RENDERABLE_TYPES = DECODERS

RESAMPLE = Image.Resampling.LANCZOS  # Lanczos-3, as pyvips' thumbnail uses

_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# libjpeg-turbo (the JPEG library of Pillow's wheels) scales the DCT by n/8, so a scale_denom of 3 gives 3/8.
_DCT_SCALING = bool(features.check_feature("libjpeg_turbo"))
# Below this many source pixels a resize is too quick to be worth splitting between threads.
PARALLEL_RESIZE_MIN_PIXELS = 1_000_000
# Modes resampled as they are (alpha modes are premultiplied per call, which bands would repeat).
_BAND_MODES = frozenset({"L", "RGB", "CMYK"})
# Modes Pillow resamples directly (with premultiplied alpha for LA/RGBA); others are converted first.
_RESIZABLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I"})


@dataclass(frozen=True)
class Thumbnail:
    size: int  # the bounding square the thumbnail was made for
    width: int
    height: int
    data: bytes


def fit_within(size: tuple[int, int], box: int) -> tuple[int, int]:
    """``size`` scaled to fit a ``box`` x ``box`` square, never enlarged."""
    width, height = size
    longest = max(width, height)
    if longest <= box:
        return width, height
    scale = box / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_thumbnails(
    source: IO[bytes],
    sizes: Sequence[int],
    max_pixels: int,
    formats: Sequence[str] | None = None,
    on_ready: Callable[[Thumbnail], None] | None = None,
) -> list[Thumbnail]:
    """Thumbnails of the first frame of the image in ``source``, one per size, smallest first.

    The image is decoded once, at the smallest JPEG DCT scale that still covers the largest size; each
    smaller thumbnail is resampled from the previous one. EXIF orientation is applied after resampling
    (where it is cheap) and every thumbnail is written without EXIF, XMP or ICC data. ``on_ready`` gets
    each thumbnail as soon as it is encoded (the smallest first, while larger ones may still be encoding).
    """
    ordered = sorted(set(sizes), reverse=True)
    tried = list(formats) if formats is not None else list(RENDERABLE_TYPES.values())
    with pixel_limit(max_pixels):
        try:
            image = open_image(source, tried)
        except BOMB_ERRORS as error:
            raise too_large(max_pixels) from error
        except DECODE_ERRORS as error:
            raise corrupt(error) from error
        with image:
            try:
                decoded = _decode(image, fit_within(image.size, ordered[0]), max_pixels)
            except BOMB_ERRORS as error:
                raise too_large(max_pixels) from error
            except DECODE_ERRORS as error:
                raise corrupt(error) from error
            # Outside the decode's error handling: a failure to encode or store is not a bad file.
            return _render(decoded, ordered, on_ready)


@dataclass
class _Decoded:
    pixels: Image.Image  # the first frame, in a mode Pillow resamples correctly
    original_size: tuple[int, int]
    box: tuple[float, float, float, float] | None  # the original within ``pixels``, when DCT-scaled
    orientation: object
    icc_profile: bytes | None


def _decode(image: ImageFile.ImageFile, largest: tuple[int, int], max_pixels: int) -> _Decoded:
    if image.width * image.height > max_pixels:
        raise too_large(max_pixels, image.size)
    if getattr(image, "n_frames", 1) > 1:
        _check_later_frames(image, max_pixels)
    original_size = image.size
    box = _draft(image, largest) if image.format == "JPEG" else None
    pixels = _resizable(image)
    # Read once the image is decoded: a PNG's eXIf chunk may follow the pixel data.
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return _Decoded(pixels, original_size, box, orientation, image.info.get("icc_profile"))


def _check_later_frames(image: ImageFile.ImageFile, max_pixels: int) -> None:
    """Decode the frames after the first (up to one image's worth of pixels), then go back to the first.

    An animation whose later frames are damaged is refused before any thumbnail of it is stored.
    """
    decoded_pixels = 0
    for index in range(1, getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
        decoded_pixels += image.width * image.height
        if decoded_pixels >= max_pixels:
            break
    image.seek(0)


def _render(
    decoded: _Decoded, sizes: list[int], on_ready: Callable[[Thumbnail], None] | None
) -> list[Thumbnail]:
    current, box = decoded.pixels, decoded.box
    # A second thread takes work Pillow does without the GIL (resampling, WebP encoding): half of a large
    # resize, and each thumbnail's encoding while the next one is resampled. On one vCPU it interleaves.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnail") as helper:
        pending: list[tuple[int, tuple[int, int], Future[bytes]]] = []
        thumbnails: list[Thumbnail] = []
        for index, size in enumerate(sizes):
            dimensions = fit_within(decoded.original_size, size)
            if current.size != dimensions:
                current = _resize(current, dimensions, box, helper)
            box = None  # the DCT-scaled box applies to the decoded image only
            output = _upright(_display_ready(current, decoded.icc_profile), decoded.orientation)
            if index < len(sizes) - 1:
                pending.append((size, output.size, helper.submit(_webp, output)))
            else:
                # The last one is encoded right here, while the helper may still encode the one before.
                thumbnails.append(Thumbnail(size, *output.size, _webp(output)))
                if on_ready is not None:
                    on_ready(thumbnails[-1])
        for size, (width, height), encoding in reversed(pending):
            thumbnails.append(Thumbnail(size, width, height, encoding.result()))
            if on_ready is not None:
                on_ready(thumbnails[-1])
    return thumbnails


def _draft(image: ImageFile.ImageFile, target: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Have the JPEG decoder scale the DCT down to the smallest size that still covers ``target``.

    Pillow's ``draft()`` offers 1/2, 1/4 and 1/8. libjpeg-turbo also decodes at 3/8: where Pillow would pick
    1/2 and 3/8 still covers the target (a 12 MP photo for 1024 px: 1500 rather than 2000 px wide), the
    decoder is set up for 3/8, which leaves the resampling half the pixels. Returns the box of the original
    image within the decoded one (as ``draft()`` does), or None when nothing was scaled.
    """
    width, height = image.size
    reduction = min(width // target[0], height // target[1])
    three_eighths = (-(-width * 3 // 8), -(-height * 3 // 8))  # libjpeg rounds each side up
    if (
        _DCT_SCALING
        and reduction in (2, 3)
        and three_eighths[0] >= target[0]
        and three_eighths[1] >= target[1]
        and len(image.tile) == 1
        and not image.decoderconfig
    ):
        decoder, extents, offset, arguments = image.tile[0]
        if extents == (0, 0, width, height):
            # The decoder writes exactly the size libjpeg computes for scale_denom 3 (3/8 of each side,
            # rounded up), so the image and its tile are sized to match before anything is decoded.
            image.tile = [ImageFile._Tile(decoder, (0, 0, *three_eighths), offset, arguments)]
            image._size = three_eighths
            image.decoderconfig = (3, 0)
            return (0.0, 0.0, width * 3 / 8, height * 3 / 8)
    drafted = image.draft(image.mode, target)
    return drafted[1] if drafted is not None else None


def _resize(
    image: Image.Image,
    size: tuple[int, int],
    box: tuple[float, float, float, float] | None,
    helper: ThreadPoolExecutor,
) -> Image.Image:
    """Pillow's resize; a large one without a box pre-reduction is split in two bands, one per thread."""
    box = box or (0.0, 0.0, float(image.width), float(image.height))
    scale_x, scale_y = (box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1]
    if (
        image.width * image.height < PARALLEL_RESIZE_MIN_PIXELS
        or image.mode not in _BAND_MODES
        or scale_x >= 2 * REDUCING_GAP
        or scale_y >= 2 * REDUCING_GAP
    ):
        return image.resize(size, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
    # Bands that read their source rows through the box: Lanczos sees the same neighbours either way.
    split = size[1] // 2
    middle = box[1] + split * scale_y
    top = helper.submit(image.resize, (size[0], split), RESAMPLE, (box[0], box[1], box[2], middle))
    bottom = image.resize((size[0], size[1] - split), RESAMPLE, box=(box[0], middle, box[2], box[3]))
    result = Image.new(image.mode, size)
    result.paste(top.result(), (0, 0))
    result.paste(bottom, (0, split))
    return result


def _webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # No exif/icc_profile/xmp arguments: the WebP is written with none of the source's metadata.
    image.save(buffer, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return buffer.getvalue()


def _resizable(image: Image.Image) -> Image.Image:
    """The decoded first frame in a mode Pillow resamples correctly."""
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" in image.info:
        return image.convert("RGBA")  # a tRNS colour key: that colour is transparent
    if mode in _RESIZABLE_MODES:
        image.load()
        return image
    if mode.startswith("I;16"):
        return image.convert("I")  # 16-bit grey resampled at full depth; scaled to 8 bits at the end
    if mode == "1":
        return image.convert("L")
    # Palette (GIF, PNG), RGBX, YCbCr, LAB, HSV, ...: keep transparency when there is any.
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def _display_ready(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """RGB or RGBA in sRGB, the only modes WebP stores."""
    if image.mode == "I":
        # 16-bit samples (0..65535) to 8 bits; a plain convert would clip everything above 255.
        return image.point(lambda value: value / 256).convert("L").convert("RGB")
    if icc_profile and image.mode in ("RGB", "RGBA", "CMYK"):
        converted = _to_srgb(image, icc_profile)
        if converted is not None:
            return converted
    if image.mode in ("RGB", "RGBA"):
        return image
    if image.mode == "LA":
        return image.convert("RGBA")
    return image.convert("RGB")


def _to_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image | None:
    """Colours converted from the embedded profile, since the profile itself is not kept; None if unusable."""
    from PIL import ImageCms  # only images that carry a profile pay for LittleCMS

    output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    try:
        source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        return ImageCms.profileToProfile(
            image, source_profile, ImageCms.createProfile("sRGB"), outputMode=output_mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image
