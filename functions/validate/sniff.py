"""Content type detection from a file's own bytes: magic numbers, UTF-8 text and CSV, zip and Office zips."""

from __future__ import annotations

import codecs
import csv
import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import filetype

from common.errors import FileRejected

# Enough for every magic number and a useful sample of text lines, still one small ranged GET.
SNIFF_BYTES = 8192

# Reads ``length`` bytes at ``start`` of the object being sniffed (fewer past its end).
RangeReader = Callable[[int, int], bytes]

OCTET_STREAM = "application/octet-stream"
ZIP = "application/zip"
PDF = "application/pdf"
TEXT = "text/plain"
CSV = "text/csv"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# filetype names some formats differently from the type filepipe stores: an animated PNG is a PNG.
_ALIASES = {"image/apng": "image/png"}

HEIC = "image/heic"
# HEIF brands of HEVC-coded images (ISO/IEC 23008-12): 8-bit and 10-bit stills (heic, heix), multi-view,
# scalable and sequences. filetype knows only heic (and mif1 beside it), so 10-bit photos went unrecognised.
_HEVC_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})

# The part folder that tells which Office application wrote an OOXML package.
_OOXML_PARTS = (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX))

_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ZIP_EMPTY_ARCHIVE = b"PK\x05\x06"
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP64_EOCD_SIZE = 56
_CENTRAL_ENTRY = b"PK\x01\x02"
_CENTRAL_ENTRY_SIZE = 46
_MAX_ZIP_COMMENT = 0xFFFF
# Entry names are all that is needed; a directory larger than this is read only in part.
MAX_CENTRAL_DIRECTORY_BYTES = 4 * 1024 * 1024

# Control characters that never appear in real text files (tab, newlines, form feed are fine).
_BINARY_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_CSV_DELIMITERS = (",", ";", "\t", "|")
_MARKUP = (
    ("<svg", "image/svg+xml"),
    ("<?xml", "application/xml"),
    ("<!doctype html", "text/html"),
    ("<html", "text/html"),
    ("<head", "text/html"),
    ("<body", "text/html"),
    ("<script", "text/html"),
    ("<iframe", "text/html"),
)


@dataclass(frozen=True)
class Detection:
    """What the bytes are: acceptable types, most specific first, and a label for messages."""

    candidates: tuple[str, ...]
    label: str


def sniff(prefix: bytes, size: int, read_range: RangeReader) -> Detection:
    """Detect the type of an object of ``size`` bytes whose first bytes are ``prefix``."""
    complete = len(prefix) >= size
    if prefix.startswith(b"%PDF-"):
        # Checked before text: a PDF can be pure ASCII and would otherwise pass as text.
        return Detection((PDF,), PDF)
    if prefix.startswith((_ZIP_LOCAL_HEADER, _ZIP_EMPTY_ARCHIVE)):
        return _sniff_zip(size, read_range)
    text = _decode_text(prefix, complete)
    if text is not None:
        return _sniff_text(text, complete)
    if _is_hevc_heif(prefix):
        return Detection((HEIC,), HEIC)
    # Text goes first because filetype also matches two-letter signatures ("BM", "MZ") that plain text
    # can start with; genuine binaries of those types carry NULs or invalid UTF-8 right after.
    guess = filetype.guess(prefix)
    if guess is None:
        return Detection((), OCTET_STREAM)
    mime = _ALIASES.get(guess.mime, guess.mime)
    return Detection((mime,), mime)


def _is_hevc_heif(prefix: bytes) -> bool:
    """Whether the file starts with an ISO-BMFF ``ftyp`` box naming an HEVC HEIF brand (and not AVIF)."""
    if len(prefix) < 16 or prefix[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(prefix[:4], "big")
    if box_size < 16 or box_size > len(prefix) or box_size % 4:
        return False
    brands = {prefix[8:12]} | {prefix[offset : offset + 4] for offset in range(16, box_size, 4)}
    return bool(brands & _HEVC_HEIF_BRANDS) and b"avif" not in brands


def _decode_text(prefix: bytes, complete: bool) -> str | None:
    """The prefix as text when it is valid UTF-8 without binary control characters, else None."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        # An incomplete prefix may end inside a multi-byte character: only a complete file must end whole.
        text = decoder.decode(prefix, final=complete)
    except UnicodeDecodeError:
        return None
    if _BINARY_CONTROL.search(text):
        return None
    return text


def _sniff_text(text: str, complete: bool) -> Detection:
    head = text.lstrip().lower()
    for opening, markup_type in _MARKUP:
        if head.startswith(opening):
            if markup_type == "application/xml" and "<svg" in head[:2048]:
                markup_type = "image/svg+xml"
            # Markup renders active content in browsers; it is never accepted as plain text.
            return Detection((), markup_type)
    if _looks_like_csv(text, complete):
        return Detection((CSV, TEXT), CSV)
    return Detection((TEXT,), TEXT)


def _looks_like_csv(text: str, complete: bool) -> bool:
    """At least two records, all with the same number (two or more) of fields for one delimiter."""
    if not complete:
        # The sample may stop mid-record: judge only the records it holds entirely.
        text = text[: text.rfind("\n") + 1]
    for delimiter in _CSV_DELIMITERS:
        if delimiter not in text:
            continue
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True) if row]
        except csv.Error:
            continue
        widths = {len(row) for row in rows}
        if len(rows) >= 2 and len(widths) == 1 and widths.pop() >= 2:
            return True
    return False


def _sniff_zip(size: int, read_range: RangeReader) -> Detection:
    names = zip_entry_names(size, read_range)
    if "[Content_Types].xml" in names:
        for folder, office_type in _OOXML_PARTS:
            if any(name.startswith(folder) for name in names):
                return Detection((office_type, ZIP), office_type)
    return Detection((ZIP,), ZIP)


def zip_entry_names(size: int, read_range: RangeReader) -> set[str]:
    """Entry names from the zip central directory, located from the end record with ranged reads."""
    tail_length = min(size, _EOCD_SIZE + _MAX_ZIP_COMMENT + _ZIP64_LOCATOR_SIZE)
    tail_start = size - tail_length
    tail = read_range(tail_start, tail_length)
    end = tail.rfind(_EOCD)
    while end >= 0 and end + _EOCD_SIZE > len(tail):
        end = tail.rfind(_EOCD, 0, end)
    if end < 0:
        raise FileRejected("zip archive has no end of central directory record", code="CORRUPT_ARCHIVE")
    entry_count, directory_size = struct.unpack_from("<HI", tail, end + 10)
    # The directory sits right before the end record; computing its place from there (rather than
    # trusting the stored offset) also finds it when data was prepended to the archive.
    directory_start = tail_start + end - directory_size
    locator = end - _ZIP64_LOCATOR_SIZE
    if locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
        (zip64_end,) = struct.unpack_from("<Q", tail, locator + 8)
        record = read_range(zip64_end, _ZIP64_EOCD_SIZE)
        if len(record) == _ZIP64_EOCD_SIZE and record.startswith(_ZIP64_EOCD):
            entry_count, directory_size = struct.unpack_from("<QQ", record, 32)
            directory_start = zip64_end - directory_size
    if directory_start < 0 or directory_size == 0:
        if entry_count == 0:
            return set()
        raise FileRejected("zip central directory is out of bounds", code="CORRUPT_ARCHIVE")
    directory = read_range(directory_start, min(directory_size, MAX_CENTRAL_DIRECTORY_BYTES))
    return _central_directory_names(directory, entry_count)


def _central_directory_names(directory: bytes, entry_count: int) -> set[str]:
    names: set[str] = set()
    position = 0
    for _ in range(entry_count):
        if position + _CENTRAL_ENTRY_SIZE > len(directory):
            break  # a directory cut at MAX_CENTRAL_DIRECTORY_BYTES: what was read is enough to decide
        if directory[position : position + 4] != _CENTRAL_ENTRY:
            raise FileRejected("zip central directory entry is malformed", code="CORRUPT_ARCHIVE")
        flags = struct.unpack_from("<H", directory, position + 8)[0]
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", directory, position + 28)
        raw_name = directory[position + _CENTRAL_ENTRY_SIZE : position + _CENTRAL_ENTRY_SIZE + name_length]
        # Bit 11 marks UTF-8 names; older archivers wrote code page 437, which cp437 decodes losslessly.
        names.add(raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace"))
        position += _CENTRAL_ENTRY_SIZE + name_length + extra_length + comment_length
    return names
