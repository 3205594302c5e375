"""Encodings judged on the whole stream, named in words a person can act on."""

from __future__ import annotations

import pytest

from osservatorio.textencoding import decode_utf8_text, is_cp1252, utf8_error, wide_encoding


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096, 1 << 20])
def test_first_bad_byte_found_across_chunk_boundaries(size):
    """A file UTF-8 for 200 KB (accents included), then one cp1252 byte: found at its
    exact offset and line whatever the chunking, even inside a character begun earlier."""
    head = ("città,più\n" * 20_000).encode("utf-8")
    data = head + "perché\n".encode("cp1252")
    err = utf8_error(_chunks(data, size))
    assert (err.offset, err.byte, err.line) == (len(head) + 5, 0xE9, 20_001)
    assert utf8_error(_chunks(head, size)) is None


def test_character_cut_by_the_end():
    data = "abc\nà".encode("utf-8")[:-1]
    err = utf8_error([data])
    assert (err.offset, err.byte, err.line) == (4, 0xC3, 2)


@pytest.mark.parametrize(("data", "named"), [
    ("a,b\n1,2\n".encode("utf-16"), "UTF-16 LE (byte order mark)"),
    ("a,b\n1,2\n".encode("utf-16-be"), "UTF-16 BE (no byte order mark)"),
    ("a,b\n1,2\n".encode("utf-16-le"), "UTF-16 LE (no byte order mark)"),
    ("a,b\n".encode("utf-32"), "UTF-32 LE (byte order mark)"),
    ("città".encode("cp1252"), None), ("città".encode("utf-8"), None), (b"", None)])
def test_wide_encodings(data, named):
    assert wide_encoding(data) == named


def test_cp1252_and_not():
    assert is_cp1252(["perché € “x”".encode("cp1252")])
    assert not is_cp1252([b"ok", b"\x81"])


def test_decode_names_the_encoding():
    assert decode_utf8_text("\ufeffid: x".encode("utf-8"), "f") == "id: x"
    with pytest.raises(ValueError, match=r"^f is not UTF-8 \(byte 0x81 at offset 1, line 1; encoding unknown\)"):
        decode_utf8_text(b"a\x81", "f")
