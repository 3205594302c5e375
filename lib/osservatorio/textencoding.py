"""Which text encoding a file is in, said in words a person can act on.

Theme files must be UTF-8; source CSVs may be UTF-8 or Windows-1252 (what Excel writes
for Italian CSV). Both are judged on the whole file, streamed in chunks, so a file whose
first megabytes are ASCII is still judged by its last byte. UTF-16 and UTF-32 (Excel's
"Unicode text", Notepad's "Unicode") are recognised by their byte order mark or, without
one, by the NUL bytes their ASCII characters carry, and named rather than misread.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Iterable

CHUNK = 1 << 20

# Longest marks first: the UTF-32 LE mark begins with the UTF-16 LE one.
BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)


def wide_encoding(head: bytes) -> str | None:
    """'UTF-16 LE (byte order mark)', 'UTF-16 BE (no byte order mark)', ... or None.

    Without a mark, text is taken as UTF-16 when at least a quarter of its byte pairs
    hold a NUL on the same side (ASCII characters in UTF-16); no UTF-8, cp1252 or
    Latin-1 text has NUL bytes.
    """
    for bom, name in BOMS:
        if head.startswith(bom):
            return f"{name} (byte order mark)"
    sample = head[: 1 << 16]
    pairs = len(sample) // 2
    if pairs == 0 or b"\0" not in sample:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if max(even, odd) >= pairs / 4:
        return f"UTF-16 {'LE' if odd > even else 'BE'} (no byte order mark)"
    return None


@dataclass(frozen=True)
class Utf8Error:
    """Where a byte stream stops being UTF-8: offset of the first bad byte (0-based),
    that byte, and its line (1-based)."""

    offset: int
    byte: int
    line: int

    def describe(self) -> str:
        return f"byte 0x{self.byte:02X} at offset {self.offset}, line {self.line}"


def utf8_error(chunks: Iterable[bytes]) -> Utf8Error | None:
    """The first byte that is not UTF-8 in the concatenated chunks, or None when the whole
    stream is UTF-8 (constant memory: an incremental decoder)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 0
    for chunk in chunks:
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            # exc.object is the chunk after up to 3 bytes of a character begun in the last one
            start = offset - (len(exc.object) - len(chunk))
            bad = start + exc.start
            return Utf8Error(bad, exc.object[exc.start], lines + chunk[: max(bad - offset, 0)].count(b"\n") + 1)
        offset += len(chunk)
        lines += chunk.count(b"\n")
    pending = decoder.getstate()[0]
    if pending:  # a character cut by the end of the stream
        return Utf8Error(offset - len(pending), pending[0], lines + 1)
    return None


def is_cp1252(chunks: Iterable[bytes]) -> bool:
    """True when every byte is a Windows-1252 character (5 byte values are not)."""
    undefined = bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D])
    return not any(b in chunk for chunk in chunks for b in undefined)


def decode_utf8_text(data: bytes, what: str) -> str:
    """``data`` as text when it is UTF-8 (a UTF-8 byte order mark allowed); else a
    ``ValueError`` whose message says what the encoding is and how to fix it: '<what> is
    encoded as UTF-16 LE (byte order mark): save it as UTF-8' or '<what> is not UTF-8
    (byte 0xE8 at offset 40, line 3; looks like Windows-1252): save it as UTF-8'."""
    wide = wide_encoding(data)
    if wide:
        raise ValueError(f"{what} is encoded as {wide}: save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        err = utf8_error([data])
        guess = "looks like Windows-1252" if is_cp1252([data]) else "encoding unknown"
        raise ValueError(f"{what} is not UTF-8 ({err.describe()}; {guess}): save it as UTF-8") from None
