"""The thumbnails step: one decode that rejects bad images, upright WebP thumbnails, no enlarging."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFile, ImageStat

from common.errors import FileRejected
from common.model import FileRef, ingest_key, new_file_id, thumbnail_key
from common.storage import OpenObject
from filepipe.local.services.awslambda.invoke import LambdaContext
from tests import images
from tests.stack import ingest_bucket, put_upload, reset_function_caches, step_event
from thumbnails import handler, render

INGEST = "filepipe-ingest-test"
CLEAN = "filepipe-files-test"
OWNER = "5f0c8a52-2d7e-4f7b-9a39-0c1d2e3f4a5b"

CONTEXT = LambdaContext(
    function_name="filepipe-thumbnails",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:filepipe-thumbnails",
    memory_limit_in_mb=1024,
    timeout_seconds=120,
)


@dataclass
class Thumbnails:
    s3: Any

    def make(self, data: bytes, content_type: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Upload ``data``, run the step; returns the event and the step's result."""
        event = step_event(put_upload(self.s3, INGEST, OWNER, data))
        if content_type is not None:
            event["validation"] = {"contentType": content_type, "size": len(data), "kind": "image"}
        result: dict[str, Any] = handler.lambda_handler(event, CONTEXT)
        return event, result

    def image(self, key: str) -> Image.Image:
        response = self.s3.get_object(Bucket=CLEAN, Key=key)
        assert response["ContentType"] == "image/webp"
        image = Image.open(io.BytesIO(response["Body"].read()))
        image.load()
        return image


@pytest.fixture
def thumbnails(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Thumbnails]:
    with mock_aws():
        s3 = ingest_bucket(INGEST)
        s3.create_bucket(Bucket=CLEAN)
        monkeypatch.setenv("INGEST_BUCKET", INGEST)
        monkeypatch.setenv("CLEAN_BUCKET", CLEAN)
        monkeypatch.setenv("MAX_IMAGE_PIXELS", "50000000")
        reset_function_caches()
        yield Thumbnails(s3)
    reset_function_caches()


def _sizes(result: dict[str, Any]) -> dict[int, tuple[int, int]]:
    return {t["size"]: (t["width"], t["height"]) for t in result["thumbnails"]}


def _grey(image: Image.Image, xy: tuple[int, int]) -> int:
    value = image.getpixel(xy)
    assert isinstance(value, int)
    return value


def _rgba(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def _close(pixel: Any, expected: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def test_a_photo_gets_both_sizes_under_deterministic_keys(thumbnails: Thumbnails) -> None:
    event, result = thumbnails.make(images.jpeg((3000, 2000)), "image/jpeg")
    owner, file_id = event["file"]["ownerId"], event["file"]["fileId"]
    assert result["thumbnails"] == [
        {"size": 256, "key": thumbnail_key(owner, file_id, 256), "width": 256, "height": 171},
        {"size": 1024, "key": thumbnail_key(owner, file_id, 1024), "width": 1024, "height": 683},
    ]
    for entry in result["thumbnails"]:
        image = thumbnails.image(entry["key"])
        assert image.format == "WEBP"
        assert image.size == (entry["width"], entry["height"])
        assert _close(image.getpixel((5, 5)), images.RED)
        assert _close(image.getpixel((image.width - 5, 5)), images.BLUE)


def test_exif_orientation_is_applied_and_all_metadata_stripped(thumbnails: Thumbnails) -> None:
    # Stored landscape, red left and blue right; orientation 6 means "rotate 90 degrees clockwise to show".
    _, result = thumbnails.make(images.jpeg_with_exif((1600, 800), orientation=6), "image/jpeg")
    assert _sizes(result) == {256: (128, 256), 1024: (512, 1024)}
    for entry in result["thumbnails"]:
        image = thumbnails.image(entry["key"])
        assert _close(image.getpixel((image.width // 2, 5)), images.RED)  # the left edge is now on top
        assert _close(image.getpixel((image.width // 2, image.height - 5)), images.BLUE)
        assert not {"exif", "icc_profile", "xmp"} & image.info.keys()
        assert not image.getexif()


def test_a_colour_profile_is_applied_then_dropped(thumbnails: Thumbnails) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = images.jpeg((400, 300), icc_profile=srgb)
    _, result = thumbnails.make(data, "image/jpeg")
    image = thumbnails.image(result["thumbnails"][1]["key"])
    assert "icc_profile" not in image.info
    assert _close(image.getpixel((5, 5)), images.RED)


def test_a_16_bit_grey_png_is_scaled_not_clipped(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.grey16_png((600, 400)), "image/png")
    assert _sizes(result) == {256: (256, 171), 1024: (600, 400)}
    image = thumbnails.image(result["thumbnails"][0]["key"]).convert("L")
    # 0x4000 and 0xC000 of 0xFFFF are a quarter and three quarters of white (a clip would give 255 twice).
    assert abs(_grey(image, (5, 5)) - 64) <= 4
    assert abs(_grey(image, (image.width - 5, 5)) - 192) <= 4


def test_a_16_bit_rgb_png(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.rgb16_png((500, 300)), "image/png")
    image = thumbnails.image(result["thumbnails"][0]["key"])
    assert image.mode == "RGB"
    assert _close(image.getpixel((5, 5)), images.RED)
    assert _close(image.getpixel((image.width - 5, 5)), images.BLUE)


def test_a_cmyk_jpeg_becomes_rgb(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.cmyk_jpeg((1200, 800)), "image/jpeg")
    assert _sizes(result) == {256: (256, 171), 1024: (1024, 683)}
    image = thumbnails.image(result["thumbnails"][1]["key"])
    assert image.mode == "RGB"
    assert _close(image.getpixel((5, 5)), images.RED, tolerance=40)
    assert _close(image.getpixel((image.width - 5, 5)), images.BLUE, tolerance=40)


def test_a_palette_png_keeps_its_transparency(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.palette_png((600, 300)), "image/png")
    image = thumbnails.image(result["thumbnails"][0]["key"])
    assert image.mode == "RGBA"
    assert _rgba(image, (5, 5))[3] == 0  # the red half was the transparent palette entry
    assert _close(image.getpixel((image.width - 5, 5)), (*images.BLUE, 255))


@pytest.mark.parametrize(
    ("make", "alpha"), [(images.la_png, 128), (images.rgba_png, None)], ids=["LA", "RGBA"]
)
def test_images_with_alpha_keep_it(thumbnails: Thumbnails, make: Any, alpha: int | None) -> None:
    _, result = thumbnails.make(make((600, 400)), "image/png")
    image = thumbnails.image(result["thumbnails"][0]["key"])
    assert image.mode == "RGBA"
    if alpha is not None:
        assert abs(_rgba(image, (5, 5))[3] - alpha) <= 2


def test_an_animated_gif_gives_a_still_of_its_first_frame(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.animated_gif((400, 300)), "image/gif")
    assert _sizes(result) == {256: (256, 192), 1024: (400, 300)}
    for entry in result["thumbnails"]:
        image = thumbnails.image(entry["key"])
        assert getattr(image, "n_frames", 1) == 1
        assert _close(image.convert("RGB").getpixel((10, 10)), images.RED)


def test_a_tiny_image_is_never_enlarged(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.png((100, 60)), "image/png")
    assert _sizes(result) == {256: (100, 60), 1024: (100, 60)}
    for entry in result["thumbnails"]:
        assert thumbnails.image(entry["key"]).size == (100, 60)


def test_a_webp_upload(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.webp((640, 480)), "image/webp")
    assert _sizes(result) == {256: (256, 192), 1024: (640, 480)}


def test_a_retry_overwrites_the_same_objects(thumbnails: Thumbnails) -> None:
    data = images.jpeg((800, 600))
    file_id = new_file_id()
    key = ingest_key(OWNER, file_id)
    version = thumbnails.s3.put_object(Bucket=INGEST, Key=key, Body=data)["VersionId"]
    event = {
        "file": FileRef(INGEST, key, version, OWNER, file_id).to_state(),
        "executionName": file_id,
        "validation": {"contentType": "image/jpeg", "size": len(data), "kind": "image"},
    }
    first = handler.lambda_handler(event, CONTEXT)
    second = handler.lambda_handler(event, CONTEXT)
    assert first == second
    listed = thumbnails.s3.list_objects_v2(Bucket=CLEAN)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted(t["key"] for t in first["thumbnails"])
    head = thumbnails.s3.head_object(Bucket=CLEAN, Key=first["thumbnails"][0]["key"])
    assert head["Metadata"] == {"source-version": version}


def test_a_heic_photo_is_turned_upright_by_its_container_rotation(thumbnails: Thumbnails) -> None:
    data = images.heic_with_exif((1600, 800), orientation=6)
    assert b"irot" in data  # the rotation is the container's, not just an EXIF tag
    _, result = thumbnails.make(data, "image/heic")
    assert _sizes(result) == {256: (128, 256), 1024: (512, 1024)}
    for entry in result["thumbnails"]:
        image = thumbnails.image(entry["key"])
        assert image.format == "WEBP"
        assert _close(image.getpixel((image.width // 2, 5)), images.RED)  # the left edge is now on top
        assert _close(image.getpixel((image.width // 2, image.height - 5)), images.BLUE)
        assert not {"exif", "icc_profile", "xmp"} & image.info.keys()


def test_a_10_bit_heic_is_brought_to_8_bits(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.heic_10_bit((640, 480)), "image/heic")
    assert _sizes(result) == {256: (256, 192), 1024: (640, 480)}
    image = thumbnails.image(result["thumbnails"][1]["key"]).convert("L")
    # The ramp survives: dark on the left, bright on the right, neither clipped to one value.
    assert _grey(image, (5, 240)) < 40
    assert _grey(image, (634, 240)) > 215


def test_a_heic_that_does_not_decode_is_rejected(thumbnails: Thumbnails) -> None:
    assert _rejection(thumbnails, images.heic(), "image/heic").code == "CORRUPT_IMAGE"


def test_an_image_type_without_a_decoder_gets_no_thumbnails(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.png((64, 48)), "image/x-portable-anymap")
    assert result == {"thumbnails": []}
    assert "Contents" not in thumbnails.s3.list_objects_v2(Bucket=CLEAN)


def _rejection(thumbnails: Thumbnails, data: bytes, content_type: str) -> FileRejected:
    with pytest.raises(FileRejected) as raised:
        thumbnails.make(data, content_type)
    assert "Contents" not in thumbnails.s3.list_objects_v2(Bucket=CLEAN)  # nothing stored for it
    return raised.value


def test_a_jpeg_header_followed_by_php_is_rejected(thumbnails: Thumbnails) -> None:
    data = images.jpeg_header_with_php()
    assert data.startswith(b"\xff\xd8\xff")  # every sniffer calls this a JPEG
    assert _rejection(thumbnails, data, "image/jpeg").code == "CORRUPT_IMAGE"


@pytest.mark.parametrize(
    ("make", "content_type"),
    [
        (lambda: images.jpeg((800, 600)), "image/jpeg"),
        (lambda: images.png((400, 300)), "image/png"),
        (lambda: images.heic_with_exif((800, 600)), "image/heic"),
    ],
    ids=["jpeg", "png", "heic"],
)
def test_a_truncated_image_is_rejected(thumbnails: Thumbnails, make: Any, content_type: str) -> None:
    assert _rejection(thumbnails, images.truncated(make()), content_type).code == "CORRUPT_IMAGE"


def test_an_animation_with_a_damaged_later_frame_is_rejected(thumbnails: Thumbnails) -> None:
    frames = [Image.effect_noise((300, 200), 60).convert("RGB") for _ in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    whole = buffer.getvalue()
    # Half the file: the first frame is intact, the later ones are cut off.
    _, intact = thumbnails.make(whole, "image/gif")
    assert _sizes(intact) == {256: (256, 171), 1024: (300, 200)}
    thumbnails.s3.delete_objects(
        Bucket=CLEAN, Delete={"Objects": [{"Key": t["key"]} for t in intact["thumbnails"]]}
    )
    assert _rejection(thumbnails, whole[: len(whole) // 2], "image/gif").code == "CORRUPT_IMAGE"


def test_the_pixel_limit_applies_to_the_decode(
    thumbnails: Thumbnails, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_IMAGE_PIXELS", "10000")
    reset_function_caches()
    assert _rejection(thumbnails, images.png_bomb(120, 100), "image/png").code == "IMAGE_TOO_LARGE"
    assert _rejection(thumbnails, images.heic_with_exif((120, 100)), "image/heic").code == "IMAGE_TOO_LARGE"


def test_an_image_arriving_in_pieces_decodes_as_a_whole() -> None:
    """The decoder reads the download as it arrives: a file spread over many reads decodes the same."""
    data = images.jpeg((2000, 1500), quality=95)

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(size if size is not None and size >= 0 else len(data), 1000))

    opened = OpenObject(len(data), Trickle(data))
    head = opened.read(8192)
    file = opened.as_file(head)
    made = render.render_thumbnails(file, (256, 1024), 50_000_000)
    whole = render.render_thumbnails(io.BytesIO(data), (256, 1024), 50_000_000)
    assert [t.data for t in made] == [t.data for t in whole]
    file.seek(0)
    assert file.read() == data
    file.seek(-10, io.SEEK_END)
    assert file.read(100) == data[-10:]


def test_without_a_validation_result_the_format_is_found_from_the_bytes(thumbnails: Thumbnails) -> None:
    _, result = thumbnails.make(images.png((300, 200)), None)
    assert _sizes(result) == {256: (256, 171), 1024: (300, 200)}


def _render_noting_decoded_sizes(
    source: io.BytesIO,
) -> tuple[list[render.Thumbnail], list[tuple[int, int]]]:
    """The 256 and 1024 px thumbnails of ``source``, and the size of each image the renderer decoded."""
    decoded_sizes: list[tuple[int, int]] = []
    original_load = ImageFile.ImageFile.load

    def spy(image: ImageFile.ImageFile) -> Any:
        decoded_sizes.append(image.size)
        return original_load(image)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", spy)
        return render.render_thumbnails(source, (256, 1024), 50_000_000), decoded_sizes


def test_jpeg_is_decoded_at_a_reduced_scale() -> None:
    """A 4000 px JPEG is drafted to 1/2 scale (the smallest DCT scale at least 1024 px wide)."""
    source = io.BytesIO(images.jpeg((4000, 3000)))
    result, decoded_sizes = _render_noting_decoded_sizes(source)
    assert [(t.width, t.height) for t in result] == [(256, 192), (1024, 768)]
    assert max(w * h for w, h in decoded_sizes) <= 2000 * 1500


def test_a_large_resize_split_between_two_threads_equals_one_resize() -> None:
    grain = Image.effect_noise((1600, 1200), 60)
    image = Image.merge(
        "RGB", (grain, grain.rotate(90, expand=False), grain.transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    )
    box = (0.0, 0.0, 1600.0, 1200.0)
    with ThreadPoolExecutor(max_workers=1) as helper:
        split = render._resize(image, (1024, 768), box, helper)
    whole = image.resize((1024, 768), Image.Resampling.LANCZOS, box=box)
    assert split.size == whole.size
    assert max(abs(a - b) for a, b in zip(split.tobytes(), whole.tobytes(), strict=True)) <= 1


def test_a_png_with_exif_orientation_is_turned_upright(thumbnails: Thumbnails) -> None:
    buffer = io.BytesIO()
    images.halves((400, 200)).save(buffer, "PNG", exif=images.camera_exif(orientation=6).tobytes())
    _, result = thumbnails.make(buffer.getvalue(), "image/png")
    assert _sizes(result) == {256: (128, 256), 1024: (200, 400)}
    image = thumbnails.image(result["thumbnails"][1]["key"])
    assert _close(_rgba(image, (100, 5)), images.RED)
    assert _close(_rgba(image, (100, 395)), images.BLUE)


def _mean_difference(first: Image.Image, second: Image.Image) -> float:
    difference = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
    return sum(ImageStat.Stat(difference).mean) / 3


def test_a_12_mp_jpeg_is_decoded_at_three_eighths_and_matches_a_full_decode() -> None:
    """4000x3000 for 1024 px: 3/8 (1500 px) covers the target, so the decoder does not stop at 1/2."""
    photo = images.halves((4000, 3000))
    ImageDraw.Draw(photo).ellipse((1200, 700, 2800, 2300), fill=(30, 200, 40))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    result, decoded_sizes = _render_noting_decoded_sizes(io.BytesIO(buffer.getvalue()))
    if render._DCT_SCALING:
        assert max(decoded_sizes) == (1500, 1125)
    reference = Image.open(io.BytesIO(buffer.getvalue()))
    for thumbnail in result:
        made = Image.open(io.BytesIO(thumbnail.data))
        expected = reference.resize(made.size, Image.Resampling.LANCZOS)
        assert _mean_difference(made, expected) < 2.0


def test_each_thumbnail_is_handed_over_as_soon_as_it_is_encoded() -> None:
    handed: list[int] = []
    result = render.render_thumbnails(
        io.BytesIO(images.jpeg((2400, 1600))),
        (1024, 256),
        50_000_000,
        on_ready=lambda t: handed.append(t.size),
    )
    assert handed == [256, 1024]  # the smallest first, encoded while the larger one still was
    assert [t.size for t in result] == [256, 1024]
