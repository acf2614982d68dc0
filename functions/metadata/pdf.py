"""PDF page counts read from the document's own structure with a few bounded ranged reads.

``count_pages`` follows the file the way a viewer does: ``startxref`` near the end, the cross-reference
sections it chains to (classic tables and PDF 1.5 cross-reference streams, including hybrid files), the
trailer's ``/Root`` catalog, its ``/Pages`` tree root and that node's ``/Count``, resolving objects
stored inside compressed object streams. Every read and every decompression is capped, so a hostile
file costs at most a few MB of memory.

Limits: only FlateDecode (with PNG predictors) is decoded; files whose structure is encrypted as a whole
(object streams of encrypted documents) or broken give no answer, in which case ``PagesCountScanner`` —
fed the bytes while they are hashed — supplies the largest ``/Count`` of an uncompressed ``/Type /Pages``
object instead. Files with data prepended before ``%PDF`` have shifted offsets and use the fallback too.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

# Reads ``length`` bytes at offset ``start`` of the document (fewer past its end).
RangeReader = Callable[[int, int], bytes]

TAIL_BYTES = 64 * 1024
OBJECT_WINDOWS = (16 * 1024, 256 * 1024, 2 * 1024 * 1024)  # tried in turn for large objects
MAX_STREAM_BYTES = 8 * 1024 * 1024
MAX_DECODED_BYTES = 32 * 1024 * 1024
MAX_XREF_SECTIONS = 64
MAX_XREF_SUBSECTIONS = 4096
MAX_REFERENCE_DEPTH = 16
MAX_PAGES = 10_000_000
_CACHED_OBJECT_STREAMS = 8

_WHITESPACE = b"\x00\t\n\x0c\r "
_DELIMITERS = b"()<>[]{}/%"
_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_OBJECT_HEADER = re.compile(rb"\s*(\d+)\s+(\d+)\s+obj\b")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])")


class PdfStructureError(Exception):
    """The structure cannot be followed (damaged, unsupported or over a limit)."""


class _Truncated(PdfStructureError):
    """The object continues past the bytes read; a larger window may hold it."""


class Name(str):
    """A PDF name (``/Pages``), told apart from strings."""


@dataclass(frozen=True)
class Ref:
    number: int
    generation: int


class _Keyword(str):
    """A bare keyword such as ``R``, ``obj`` or ``stream``; never a value."""


class _Parser:
    """A recursive-descent reader of PDF objects over a byte window."""

    def __init__(self, data: bytes, position: int = 0, complete: bool = False) -> None:
        self.data = data
        self.position = position
        self.complete = complete  # True when the window reaches the end of the file

    def _need(self, count: int = 1) -> None:
        if self.position + count > len(self.data):
            if self.complete:
                raise PdfStructureError("unexpected end of file")
            raise _Truncated("object continues past the window")

    def skip_space(self) -> None:
        data = self.data
        while self.position < len(data):
            byte = data[self.position]
            if byte in _WHITESPACE:
                self.position += 1
            elif byte == 0x25:  # % comment to the end of the line
                while self.position < len(data) and data[self.position] not in b"\r\n":
                    self.position += 1
            else:
                return

    def _token(self) -> bytes:
        start = self.position
        data = self.data
        while self.position < len(data) and data[self.position] not in _WHITESPACE + _DELIMITERS:
            self.position += 1
        if self.position == len(data) and not self.complete:
            raise _Truncated("token continues past the window")
        return data[start : self.position]

    def value(self, depth: int = 0) -> object:
        if depth > 64:
            raise PdfStructureError("objects nested too deeply")
        self.skip_space()
        self._need()
        data = self.data
        byte = data[self.position]
        if data.startswith(b"<<", self.position):
            return self._dictionary(depth)
        if byte == 0x3C:  # <
            return self._hex_string()
        if byte == 0x5B:  # [
            return self._array(depth)
        if byte == 0x28:  # (
            return self._literal_string()
        if byte == 0x2F:  # /
            self.position += 1
            return Name(self._token().decode("latin-1"))
        token = self._token()
        if not token:
            raise PdfStructureError(f"unexpected byte {byte:#x}")
        if re.fullmatch(rb"[+-]?\d+", token):
            return self._integer_or_reference(int(token))
        if re.fullmatch(rb"[+-]?(\d+\.\d*|\.\d+)", token):
            return float(token)
        keywords: dict[bytes, object] = {b"true": True, b"false": False, b"null": None}
        if token in keywords:
            return keywords[token]
        return _Keyword(token.decode("latin-1"))

    def _integer_or_reference(self, number: int) -> object:
        after_number = self.position
        try:
            self.skip_space()
            generation = self._token()
            self.skip_space()
            keyword = self._token()
        except _Truncated:
            self.position = after_number
            raise
        if generation.isdigit() and keyword == b"R":
            return Ref(number, int(generation))
        self.position = after_number
        return number

    def _dictionary(self, depth: int) -> dict[str, object]:
        self.position += 2
        result: dict[str, object] = {}
        while True:
            self.skip_space()
            self._need(2)
            if self.data.startswith(b">>", self.position):
                self.position += 2
                return result
            key = self.value(depth + 1)
            if not isinstance(key, Name):
                raise PdfStructureError("dictionary key is not a name")
            result[str(key)] = self.value(depth + 1)

    def _array(self, depth: int) -> list[object]:
        self.position += 1
        result: list[object] = []
        while True:
            self.skip_space()
            self._need()
            if self.data[self.position] == 0x5D:  # ]
                self.position += 1
                return result
            result.append(self.value(depth + 1))

    def _hex_string(self) -> bytes:
        end = self.data.find(b">", self.position)
        if end < 0:
            self._need(len(self.data) + 1 - self.position)
        digits = re.sub(rb"\s", b"", self.data[self.position + 1 : end])
        self.position = end + 1
        return bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode("latin-1"))

    def _literal_string(self) -> bytes:
        nesting = 0
        start = self.position
        data = self.data
        while True:
            self._need()
            byte = data[self.position]
            self.position += 1
            if byte == 0x5C:  # backslash escapes the next byte
                self.position += 1
            elif byte == 0x28:
                nesting += 1
            elif byte == 0x29:
                nesting -= 1
                if nesting == 0:
                    return data[start + 1 : self.position - 1]


@dataclass
class _IndirectObject:
    value: object
    stream_start: int | None  # absolute offset of the stream data, for stream objects


def _parse_indirect(read: RangeReader, size: int, offset: int) -> _IndirectObject:
    """The object at ``offset`` (``N G obj ... endobj``), read with a growing window."""
    for window in OBJECT_WINDOWS:
        data = read(offset, window)
        complete = offset + len(data) >= size
        header = _OBJECT_HEADER.match(data)
        if header is None:
            raise PdfStructureError(f"no object at offset {offset}")
        parser = _Parser(data, header.end(), complete)
        try:
            value = parser.value()
            parser.skip_space()
            stream_start = None
            if data.startswith(b"stream", parser.position):
                position = parser.position + len(b"stream")
                if data.startswith(b"\r\n", position):
                    position += 2
                elif data.startswith(b"\n", position) or data.startswith(b"\r", position):
                    position += 1
                stream_start = offset + position
            return _IndirectObject(value, stream_start)
        except _Truncated:
            if complete:
                break
    raise PdfStructureError(f"object at offset {offset} is larger than {OBJECT_WINDOWS[-1]} bytes")


def _decode_stream(raw: bytes, dictionary: dict[str, object]) -> bytes:
    filters = dictionary.get("Filter")
    names = filters if isinstance(filters, list) else [filters] if filters is not None else []
    data = raw
    for name in names:
        if name not in ("FlateDecode", "Fl"):
            raise PdfStructureError(f"unsupported stream filter {name}")
        decompressor = zlib.decompressobj()
        data = decompressor.decompress(data, MAX_DECODED_BYTES)
        if decompressor.unconsumed_tail:
            raise PdfStructureError("stream decodes to more than the limit")
    parameters = dictionary.get("DecodeParms")
    if isinstance(parameters, list):
        parameters = parameters[0] if parameters else None
    if isinstance(parameters, dict):
        predictor = parameters.get("Predictor", 1)
        if isinstance(predictor, int) and predictor >= 10:
            columns = parameters.get("Columns", 1)
            if not isinstance(columns, int) or columns < 1:
                raise PdfStructureError("bad predictor columns")
            data = _undo_png_predictor(data, columns)
        elif predictor not in (1, None):
            raise PdfStructureError(f"unsupported predictor {predictor}")
    return data


def _undo_png_predictor(data: bytes, columns: int) -> bytes:
    """PNG row filters over one-byte samples, as cross-reference streams use them."""
    row_length = columns + 1
    previous = bytearray(columns)
    output = bytearray()
    for start in range(0, len(data) - row_length + 1, row_length):
        kind = data[start]
        row = bytearray(data[start + 1 : start + row_length])
        if kind == 0:
            output += row
            previous = row
            continue
        if kind == 2:  # "up", what nearly every writer uses: one pass without per-byte branching
            row = bytearray((value + up) & 0xFF for value, up in zip(row, previous, strict=True))
            output += row
            previous = row
            continue
        for index in range(columns):
            left = row[index - 1] if index else 0
            up = previous[index]
            if kind == 1:
                row[index] = (row[index] + left) & 0xFF
            elif kind == 2:
                row[index] = (row[index] + up) & 0xFF
            elif kind == 3:
                row[index] = (row[index] + (left + up) // 2) & 0xFF
            elif kind == 4:
                upper_left = previous[index - 1] if index else 0
                estimate = left + up - upper_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
                nearest = (left, up, upper_left)[distances.index(min(distances))]
                row[index] = (row[index] + nearest) & 0xFF
            elif kind != 0:
                raise PdfStructureError(f"unknown PNG filter {kind}")
        output += row
        previous = row
    return bytes(output)


# Where an object lives: ("offset", byte offset), ("stream", object stream number, index) or ("free",).
_Entry = tuple[object, ...]


@dataclass
class _TableSection:
    """A classic cross-reference table; entries are fetched one by one when asked for."""

    read: RangeReader
    subsections: list[tuple[int, int, int, int]] = field(default_factory=list)  # first, count, at, width

    def lookup(self, number: int) -> _Entry | None:
        for first, count, start, width in self.subsections:
            if first <= number < first + count:
                raw = self.read(start + (number - first) * width, 20)
                entry = _XREF_ENTRY.match(raw)
                if entry is None:
                    raise PdfStructureError("malformed cross-reference entry")
                return ("offset", int(entry[1])) if entry[3] == b"n" else ("free",)
        return None


@dataclass
class _MappedSection:
    """A decoded cross-reference stream."""

    entries: dict[int, _Entry]

    def lookup(self, number: int) -> _Entry | None:
        return self.entries.get(number)


class _Document:
    def __init__(self, read: RangeReader, size: int) -> None:
        self.read = read
        self.size = size
        self.sections: list[_TableSection | _MappedSection] = []
        self.object_streams: dict[int, tuple[bytes, list[tuple[int, int]], int]] = {}

    def page_count(self) -> int | None:
        tail_start = max(0, self.size - TAIL_BYTES)
        tail = self.read(tail_start, self.size - tail_start)
        positions = list(_STARTXREF.finditer(tail))
        if not positions:
            raise PdfStructureError("no startxref")
        trailer = self._load_cross_references(int(positions[-1][1]))
        catalog = self.resolve(trailer.get("Root"))
        if not isinstance(catalog, dict):
            raise PdfStructureError("no document catalog")
        pages = self.resolve(catalog.get("Pages"))
        if not isinstance(pages, dict):
            raise PdfStructureError("no page tree")
        count = self.resolve(pages.get("Count"))
        if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= MAX_PAGES:
            return count
        return None

    def _load_cross_references(self, offset: int) -> dict[str, object]:
        newest_trailer: dict[str, object] | None = None
        seen: set[int] = set()
        next_offset: int | None = offset
        while next_offset is not None:
            if next_offset in seen or len(self.sections) >= MAX_XREF_SECTIONS:
                break
            seen.add(next_offset)
            head = self.read(next_offset, 64).lstrip(_WHITESPACE)
            if head.startswith(b"xref"):
                trailer = self._read_table(next_offset)
                hybrid = trailer.get("XRefStm")
                if isinstance(hybrid, int) and hybrid not in seen:
                    seen.add(hybrid)
                    self._read_stream_section(hybrid)
            else:
                trailer = self._read_stream_section(next_offset)
            if newest_trailer is None:
                newest_trailer = trailer
            previous = trailer.get("Prev")
            next_offset = previous if isinstance(previous, int) else None
        if newest_trailer is None:
            raise PdfStructureError("no cross-reference section")
        return newest_trailer

    def _read_table(self, offset: int) -> dict[str, object]:
        section = _TableSection(self.read)
        self.sections.append(section)
        window_start = offset
        data = self.read(window_start, 4096)
        position = data.index(b"xref") + len(b"xref")
        for _ in range(MAX_XREF_SUBSECTIONS):
            parser = _Parser(data, position, complete=window_start + len(data) >= self.size)
            parser.skip_space()
            if data.startswith(b"trailer", parser.position):
                return self._read_trailer(window_start + parser.position + len(b"trailer"))
            first = parser.value()
            parser.skip_space()
            count = parser.value()
            if not isinstance(first, int) or not isinstance(count, int) or first < 0 or count < 0:
                raise PdfStructureError("malformed cross-reference subsection header")
            parser.skip_space()
            entries_start = window_start + parser.position
            width = 20
            if count:
                sample = self.read(entries_start, 21)
                if _XREF_ENTRY.match(sample) is None:
                    raise PdfStructureError("malformed cross-reference entry")
                # The standard says 20 bytes an entry; some writers end lines with one byte, not two.
                width = 20 if sample[18:20] in (b" \n", b" \r", b"\r\n") else 19
            section.subsections.append((first, count, entries_start, width))
            window_start = entries_start + count * width
            data = self.read(window_start, 4096)
            position = 0
        raise PdfStructureError("too many cross-reference subsections")

    def _read_trailer(self, offset: int) -> dict[str, object]:
        data = self.read(offset, OBJECT_WINDOWS[0])
        trailer = _Parser(data, 0, complete=offset + len(data) >= self.size).value()
        if not isinstance(trailer, dict):
            raise PdfStructureError("trailer is not a dictionary")
        return trailer

    def _read_stream_section(self, offset: int) -> dict[str, object]:
        obj = _parse_indirect(self.read, self.size, offset)
        dictionary = obj.value
        if not isinstance(dictionary, dict) or dictionary.get("Type") != "XRef" or obj.stream_start is None:
            raise PdfStructureError("startxref does not point at cross-references")
        data = self._stream_data(dictionary, obj.stream_start)
        widths = dictionary.get("W")
        if not (isinstance(widths, list) and len(widths) == 3 and all(isinstance(w, int) for w in widths)):
            raise PdfStructureError("bad /W in cross-reference stream")
        type_width, field2_width, field3_width = widths
        size = dictionary.get("Size")
        index = dictionary.get("Index", [0, size])
        if not isinstance(index, list) or len(index) % 2 or not all(isinstance(i, int) for i in index):
            raise PdfStructureError("bad /Index in cross-reference stream")
        row_width = type_width + field2_width + field3_width
        entries: dict[int, _Entry] = {}
        position = 0
        for pair in range(0, len(index), 2):
            first, count = index[pair], index[pair + 1]
            for number in range(first, first + count):
                row = data[position : position + row_width]
                if len(row) < row_width:
                    raise PdfStructureError("cross-reference stream is short")
                position += row_width
                kind = int.from_bytes(row[:type_width], "big") if type_width else 1
                second = int.from_bytes(row[type_width : type_width + field2_width], "big")
                third = int.from_bytes(row[type_width + field2_width :], "big")
                if kind == 1:
                    entries[number] = ("offset", second)
                elif kind == 2:
                    entries[number] = ("stream", second, third)
                else:
                    entries[number] = ("free",)
        self.sections.append(_MappedSection(entries))
        return dictionary

    def _stream_data(self, dictionary: dict[str, object], start: int) -> bytes:
        length = self.resolve(dictionary.get("Length"))
        if not isinstance(length, int) or length < 0:
            raise PdfStructureError("stream has no usable /Length")
        if length > MAX_STREAM_BYTES:
            raise PdfStructureError("stream is larger than the limit")
        return _decode_stream(self.read(start, length), dictionary)

    def _entry(self, number: int) -> _Entry | None:
        for section in self.sections:
            entry = section.lookup(number)
            if entry is not None:
                return entry
        return None

    def resolve(self, value: object) -> object:
        for _ in range(MAX_REFERENCE_DEPTH):
            if not isinstance(value, Ref):
                return value
            value = self._object(value.number)
        raise PdfStructureError("reference chain too long")

    def _object(self, number: int) -> object:
        entry = self._entry(number)
        if entry is None or entry[0] == "free":
            return None  # the standard says a missing object is null
        if entry[0] == "offset":
            offset = entry[1]
            assert isinstance(offset, int)
            return _parse_indirect(self.read, self.size, offset).value
        stream_number, index = entry[1], entry[2]
        assert isinstance(stream_number, int)
        assert isinstance(index, int)
        data, offsets, first = self._object_stream(stream_number)
        if not 0 <= index < len(offsets) or offsets[index][0] != number:
            raise PdfStructureError(f"object {number} is not where its object stream says")
        return _Parser(data, first + offsets[index][1], complete=True).value()

    def _object_stream(self, number: int) -> tuple[bytes, list[tuple[int, int]], int]:
        cached = self.object_streams.get(number)
        if cached is not None:
            return cached
        entry = self._entry(number)
        if entry is None or entry[0] != "offset":
            raise PdfStructureError(f"object stream {number} has no offset")
        offset = entry[1]
        assert isinstance(offset, int)
        obj = _parse_indirect(self.read, self.size, offset)
        dictionary = obj.value
        if not isinstance(dictionary, dict) or dictionary.get("Type") != "ObjStm" or obj.stream_start is None:
            raise PdfStructureError(f"object {number} is not an object stream")
        count, first = dictionary.get("N"), dictionary.get("First")
        if not isinstance(count, int) or not isinstance(first, int) or count < 0 or first < 0:
            raise PdfStructureError("object stream without /N or /First")
        data = self._stream_data(dictionary, obj.stream_start)
        numbers = _Parser(data[:first], 0, complete=True)
        offsets = []
        for _ in range(count):
            object_number, object_offset = numbers.value(), numbers.value()
            if not isinstance(object_number, int) or not isinstance(object_offset, int):
                raise PdfStructureError("malformed object stream header")
            offsets.append((object_number, object_offset))
        if len(self.object_streams) >= _CACHED_OBJECT_STREAMS:
            self.object_streams.pop(next(iter(self.object_streams)))
        self.object_streams[number] = (data, offsets, first)
        return data, offsets, first


def count_pages(read: RangeReader, size: int) -> int | None:
    """The document's page count from its page tree, or None when the structure cannot be followed."""
    try:
        return _Document(read, size).page_count()
    except (PdfStructureError, zlib.error, ValueError, IndexError, RecursionError):
        return None


class PagesCountScanner:
    """Largest ``/Count`` of an uncompressed ``/Type /Pages`` object, from the bytes fed in order.

    A fallback for files whose cross-references cannot be followed. Memory is bounded by the carried
    tail; a page tree object longer than that is not seen.
    """

    CARRY_BYTES = 256 * 1024
    _PAGES_TYPE = re.compile(rb"/Type\s*/Pages(?![A-Za-z0-9])")
    _COUNT = re.compile(rb"/Count\s+(\d{1,9})(?!\d)")

    def __init__(self) -> None:
        self._carry = b""
        self.largest: int | None = None

    def feed(self, chunk: bytes) -> None:
        data = self._carry + chunk
        self._scan(data)
        self._carry = data[-self.CARRY_BYTES :]

    def _scan(self, data: bytes) -> None:
        for match in self._PAGES_TYPE.finditer(data):
            start = data.rfind(b"obj", 0, match.start())
            end = data.find(b"endobj", match.end())
            if start < 0 or end < 0:
                continue  # the object is not whole yet; the carried tail sees it again with more data
            for count in self._COUNT.finditer(data, start, end):
                value = int(count[1])
                if value <= MAX_PAGES and (self.largest is None or value > self.largest):
                    self.largest = value
