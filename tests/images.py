"""Test files made in memory: images with EXIF and odd modes, PDFs, Office zips and hostile files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence

from PIL import ExifTags, Image, ImageDraw, TiffImagePlugin

RED = (220, 20, 20)
BLUE = (20, 20, 220)


def _save(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def halves(
    size: tuple[int, int], left: tuple[int, int, int] = RED, right: tuple[int, int, int] = BLUE
) -> Image.Image:
    """An RGB image whose left half is ``left`` and right half ``right``: orientation is easy to see."""
    image = Image.new("RGB", size, left)
    ImageDraw.Draw(image).rectangle((size[0] // 2, 0, size[0], size[1]), fill=right)
    return image


def camera_exif(orientation: int = 1, with_gps: bool = True) -> Image.Exif:
    """EXIF as a phone writes it: camera, exposure, lens, orientation and (by default) a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS R5"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Software] = "firmware 1.8"
    exif[ExifTags.Base.Artist] = "Jane Doe"
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:30:00"
    details[ExifTags.Base.ExposureTime] = TiffImagePlugin.IFDRational(1, 125)
    details[ExifTags.Base.FNumber] = TiffImagePlugin.IFDRational(28, 10)
    details[ExifTags.Base.ISOSpeedRatings] = 400
    details[ExifTags.Base.FocalLength] = TiffImagePlugin.IFDRational(50, 1)
    details[ExifTags.Base.LensModel] = "RF50mm F1.8 STM"
    details[ExifTags.Base.BodySerialNumber] = "0123456789"
    if with_gps:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps[ExifTags.GPS.GPSLatitude] = (
            TiffImagePlugin.IFDRational(48, 1),
            TiffImagePlugin.IFDRational(51, 1),
            TiffImagePlugin.IFDRational(2964, 100),
        )
        gps[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps[ExifTags.GPS.GPSLongitude] = (
            TiffImagePlugin.IFDRational(2, 1),
            TiffImagePlugin.IFDRational(17, 1),
            TiffImagePlugin.IFDRational(4008, 100),
        )
    return exif


def jpeg_with_exif(size: tuple[int, int] = (400, 200), orientation: int = 1, with_gps: bool = True) -> bytes:
    """A red|blue JPEG carrying camera EXIF with ``orientation`` and a GPS position."""
    return _save(halves(size), "JPEG", quality=90, exif=camera_exif(orientation, with_gps).tobytes())


def jpeg(size: tuple[int, int] = (64, 48), quality: int = 85, **options: object) -> bytes:
    return _save(halves(size), "JPEG", quality=quality, **options)


def cmyk_jpeg(size: tuple[int, int] = (300, 200)) -> bytes:
    return _save(halves(size).convert("CMYK"), "JPEG", quality=90)


def png(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    return _save(halves(size).convert(mode), "PNG")


def rgba_png(size: tuple[int, int] = (300, 200)) -> bytes:
    image = halves(size).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(size))
    return _save(image, "PNG")


def la_png(size: tuple[int, int] = (300, 200)) -> bytes:
    image = halves(size).convert("LA")
    image.putalpha(128)
    return _save(image, "PNG")


def palette_png(size: tuple[int, int] = (300, 200), transparent: bool = True) -> bytes:
    """A palette PNG; with ``transparent`` its red entry is fully transparent (a tRNS chunk)."""
    image = halves(size).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    options: dict[str, object] = {}
    if transparent:
        red_index = image.getpixel((0, 0))
        options["transparency"] = red_index
    return _save(image, "PNG", **options)


def grey16_png(size: tuple[int, int] = (300, 200)) -> bytes:
    """A 16-bit greyscale PNG: left half at 1/4 of full scale, right half at 3/4."""
    width, height = size
    left, right = 0x4000, 0xC000
    row = b"\x00" + struct.pack(f">{width}H", *[left if x < width // 2 else right for x in range(width)])
    return png_from_rows(width, height, bit_depth=16, colour_type=0, rows=[row] * height)


def rgb16_png(size: tuple[int, int] = (300, 200)) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write these, so the chunks are written here)."""
    width, height = size
    red, blue = (0xDC00, 0x1400, 0x1400), (0x1400, 0x1400, 0xDC00)
    samples = [channel for x in range(width) for channel in (red if x < width // 2 else blue)]
    row = b"\x00" + struct.pack(f">{width * 3}H", *samples)
    return png_from_rows(width, height, bit_depth=16, colour_type=2, rows=[row] * height)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_from_rows(width: int, height: int, bit_depth: int, colour_type: int, rows: Iterable[bytes]) -> bytes:
    """A PNG from already filtered scanlines (each starting with its filter byte), compressed as a stream."""
    compressor = zlib.compressobj(9)
    idat = bytearray()
    for row in rows:
        idat += compressor.compress(row)
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", bytes(idat)) + _chunk(b"IEND", b"")
    )


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A greyscale PNG declaring ``width`` x ``height`` pixels of zeros: a few hundred KB, GBs decoded.

    The zero rows are deflated once in a block of rows ended by a full flush (which makes the block
    independent of what precedes it) and that block is repeated, so building 400 MB worth of rows
    costs milliseconds.
    """
    zero_row = bytes(width + 1)  # filter byte 0 and one zero byte a pixel
    rows_per_block = 64
    block_rows, last_rows = divmod(height, rows_per_block)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = raw.compress(zero_row * rows_per_block) + raw.flush(zlib.Z_FULL_FLUSH)
    tail = raw.compress(zero_row * last_rows) + raw.flush(zlib.Z_FINISH)
    # Adler-32 over n zero bytes: the byte sum stays 1 and the running sum grows by 1 a byte.
    checksum = ((height * len(zero_row)) % 65521) << 16 | 1
    stream = b"\x78\xda" + block * block_rows + tail + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def animated_gif(
    size: tuple[int, int] = (120, 80), frames: Sequence[tuple[int, int, int]] = (RED, BLUE, RED)
) -> bytes:
    """A looping GIF whose first frame is the first colour (transparent corner) and the rest follow."""
    images = [Image.new("RGB", size, colour) for colour in frames]
    return _save(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def webp(size: tuple[int, int] = (64, 48)) -> bytes:
    return _save(halves(size), "WEBP", quality=80)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def jpeg_header_with_php() -> bytes:
    """A JPEG's first segments (SOI, JFIF, quantisation table, frame header) followed by a PHP script."""
    real = jpeg((32, 32))
    start_of_scan = real.index(b"\xff\xda")
    return real[:start_of_scan] + b"<?php system($_GET['cmd']); ?>\n" + b"A" * 200


def exe() -> bytes:
    """The start of a Windows PE executable: DOS header, stub and PE header."""
    dos_header = bytearray(64)
    dos_header[0:2] = b"MZ"
    struct.pack_into("<I", dos_header, 0x3C, 0x80)
    stub = (
        b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21"
        + b"This program cannot be run in DOS mode.\r\r\n$"
    )
    body = bytes(dos_header) + stub
    body += bytes(0x80 - len(body)) + b"PE\x00\x00" + struct.pack("<HH", 0x8664, 3) + bytes(400)
    return body


def text(lines: int = 20) -> bytes:
    return "".join(
        f"Line {n}: the quick brown fox jumps over the lazy dog. Ünïcödé ✓\n" for n in range(lines)
    ).encode()


def csv_text(rows: int = 50, delimiter: str = ",") -> bytes:
    header = delimiter.join(["id", "name", "amount", "note"])
    body = [
        delimiter.join([str(n), f"item {n}", f"{n * 1.5:.2f}", '"quoted, with delimiter"'])
        for n in range(rows)
    ]
    return ("\n".join([header, *body]) + "\n").encode()


def html() -> bytes:
    return b"<!DOCTYPE html>\n<html><body><script>alert(1)</script></body></html>\n"


def svg() -> bytes:
    return b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n'


def plain_zip(entries: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (entries or {"readme.txt": b"hello", "data/values.csv": b"a,b\n1,2\n"}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


_OOXML_MAIN_PART = {
    "docx": (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
}


def office_document(kind: str, padding_entries: int = 0) -> bytes:
    """A minimal OOXML package (docx, xlsx or pptx); ``padding_entries`` put media first, like real files."""
    part, part_type = _OOXML_MAIN_PART[kind]
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Override PartName="/{part}" ContentType="{part_type}"/></Types>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(padding_entries):
            archive.writestr(f"media/image{n}.png", png((8, 8)))
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(part, "<document/>")
    return buffer.getvalue()


def mp4() -> bytes:
    """An ISO BMFF file: ftyp (isom) then an empty mdat box."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    return ftyp + struct.pack(">I", 8 + 64) + b"mdat" + bytes(64)


def mp3() -> bytes:
    """An ID3v2 tag followed by MPEG-1 layer III frame headers."""
    tag = b"ID3\x04\x00\x00" + struct.pack(">I", 0)
    frame = b"\xff\xfb\x90\x64" + bytes(413)
    return tag + frame * 4


def heic_with_exif(size: tuple[int, int] = (400, 200), orientation: int = 1, with_gps: bool = True) -> bytes:
    """A HEIC photo (red left, blue right) with camera EXIF, as a phone writes it.

    The orientation is written the HEIF way, as the container's rotation (``irot``), with the pixels
    left as they are. pillow-heif encodes it (x265); the product itself only ever decodes HEIC.
    """
    import pillow_heif

    buffer = io.BytesIO()
    exif = camera_exif(orientation, with_gps).tobytes()
    pillow_heif.from_pillow(halves(size)).save(buffer, quality=90, exif=exif)
    return buffer.getvalue()


def heic_10_bit(size: tuple[int, int] = (64, 48)) -> bytes:
    """A 10-bit HEIC (the ``heix`` brand, as HDR photos are written): a grey ramp left to right."""
    import pillow_heif

    width, height = size
    row = b"".join(struct.pack("<3H", *(65535 * x // max(1, width - 1),) * 3) for x in range(width))
    buffer = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB;16", size=size, data=row * height).save(buffer, quality=90)
    return buffer.getvalue()


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """An ISO-BMFF file's first box naming its brands, then an empty meta box."""
    box = b"ftyp" + major + struct.pack(">I", 0) + b"".join(compatible)
    return struct.pack(">I", 4 + len(box)) + box + struct.pack(">I", 16) + b"meta" + bytes(8)


def heic() -> bytes:
    """The start of a HEIF image: ftyp with the heic brand, then a meta box."""
    return ftyp(b"heic", b"mif1", b"heic")


def pdf(pages: int, filler: bytes = b"") -> bytes:
    """A minimal valid PDF 1.4 with ``pages`` empty pages, a classic cross-reference table and trailer.

    ``filler`` becomes the data of an unreferenced stream object placed before the others (a large file).
    """
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R /Outlines 3 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (4 + n) for n in range(pages))
        + b"] /Count %d >>" % pages,
        b"<< /Type /Outlines /Count 99 >>",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
    output = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    if filler:
        output += b"%d 0 obj\n<< /Length %d >>\nstream\n" % (len(objects) + 1, len(filler))
        output += filler + b"\nendstream\nendobj\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(output)


def pdf_with_object_streams(pages: int) -> bytes:
    """A PDF 1.5 whose catalog and page tree sit in a compressed object stream, indexed by an xref stream.

    Objects: 1 catalog and 2 page tree (both inside object stream 3), pages from 4, then the page tree's
    /Count as an indirect integer object, then the cross-reference stream.
    """
    page_numbers = [4 + n for n in range(pages)]
    count_number = 4 + pages
    xref_number = count_number + 1
    packed = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Kids ["
        + b" ".join(b"%d 0 R" % n for n in page_numbers)
        + b"] /Type /Pages /Count %d 0 R >>" % count_number,
    ]
    header = b"1 0 2 %d " % (len(packed[0]) + 1)
    compressed = zlib.compress(header + b" ".join(packed))
    output = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {3: len(output)}
    output += (
        b"3 0 obj\n<< /Type /ObjStm /N 2 /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(header), len(compressed))
        + compressed
        + b"\nendstream\nendobj\n"
    )
    for number in page_numbers:
        offsets[number] = len(output)
        output += b"%d 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n" % number
    offsets[count_number] = len(output)
    output += b"%d 0 obj\n%d\nendobj\n" % (count_number, pages)
    offsets[xref_number] = len(output)

    rows = [b"\x00\x00\x00\x00\xff"]  # object 0: free
    for number in range(1, xref_number + 1):
        if number in (1, 2):  # compressed: type 2, object stream 3, index in the stream
            rows.append(b"\x02" + (3).to_bytes(3, "big") + (number - 1).to_bytes(1, "big"))
        else:
            rows.append(b"\x01" + offsets[number].to_bytes(3, "big") + b"\x00")
    previous = bytes(5)
    predicted = bytearray()
    for row in rows:  # PNG "up" predictor, as most writers use for cross-reference streams
        predicted += b"\x02" + bytes((value - up) & 0xFF for value, up in zip(row, previous, strict=True))
        previous = row
    data = zlib.compress(bytes(predicted))
    output += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 3 1] /Root 1 0 R /Filter /FlateDecode "
        b"/DecodeParms << /Columns 5 /Predictor 12 >> /Length %d >>\nstream\n"
        % (xref_number, xref_number + 1, len(data))
        + data
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    )
    return bytes(output)


def pdf_incremental_update(pages: int) -> bytes:
    """``pdf(pages)`` with an appended update (new xref section with /Prev) that adds one more page."""
    base = pdf(pages)
    previous_xref = int(base.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    new_page = 4 + pages
    kids = b" ".join(b"%d 0 R" % (4 + n) for n in range(pages + 1))
    output = bytearray(base)
    tree_offset = len(output)
    output += b"2 0 obj\n<< /Type /Pages /Kids [" + kids + b"] /Count %d >>\nendobj\n" % (pages + 1)
    page_offset = len(output)
    output += b"%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n" % new_page
    xref = len(output)
    output += b"xref\n2 1\n%010d 00000 n \n%d 1\n%010d 00000 n \n" % (tree_offset, new_page, page_offset)
    output += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        new_page + 1,
        previous_xref,
        xref,
    )
    return bytes(output)
