"""Reading source files: what cannot be read is named for what it is, in one line; the
encoding is judged on the whole file; repaired cells keep the text as written."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from osservatorio.data.reading import UnreadableFile, read_source

HEADER = "id_pilota,tema,codice_istat,data_avvio,pratica,costo_euro,beneficiari\n"
ROW = "P{i},t,037006,2021-03-05,co-progettazione,100,5\n"


def _csv(rows: int) -> str:
    return HEADER + "".join(ROW.format(i=i) for i in range(rows))


def _unreadable(path) -> str:
    with pytest.raises(UnreadableFile) as exc:
        read_source(path)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_not_a_zip_xlsx(tmp_path):
    path = tmp_path / "pilot.xlsx"
    path.write_text(_csv(3))
    assert _unreadable(path).startswith("not a readable XLSX workbook (not a zip archive, or a truncated one")


def test_truncated_xlsx(tmp_path):
    path = tmp_path / "pilot.xlsx"
    pd.read_csv(__import__("io").StringIO(_csv(50)), dtype=str).to_excel(path, index=False)
    path.write_bytes(path.read_bytes()[:-200])
    assert "XLSX workbook" in _unreadable(path)


def test_zip_without_a_workbook(tmp_path):
    import zipfile

    path = tmp_path / "pilot.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    assert _unreadable(path).startswith("damaged XLSX workbook (")


@pytest.mark.parametrize(("damage", "says"), [
    (lambda b: b[: len(b) // 2], "EOFError: Compressed file ended"),
    (lambda b: b[:12] + bytes(20) + b[32:], "Error -3 while decompressing"),
    (lambda b: b"plain text, not gzip at all", "BadGzipFile: Not a gzipped file")])
def test_damaged_gzip(tmp_path, damage, says):
    path = tmp_path / "pilot.csv.gz"
    path.write_bytes(damage(gzip.compress(_csv(2000).encode())))
    msg = _unreadable(path)
    assert msg.startswith("not a valid gzip file (") and says in msg


def test_gzip_is_read(tmp_path):
    path = tmp_path / "pilot.csv.gz"
    path.write_bytes(gzip.compress(_csv(5).encode()))
    assert len(read_source(path).frame) == 5


@pytest.mark.parametrize(("encoding", "named"), [("utf-16", "UTF-16 LE (byte order mark)"),
                                                 ("utf-16-le", "UTF-16 LE (no byte order mark)")])
def test_utf16_is_named(tmp_path, encoding, named):
    path = tmp_path / "pilot.csv"
    path.write_bytes(_csv(3).encode(encoding))
    assert _unreadable(path).startswith(f"text encoded as {named}, not UTF-8 or Windows-1252: save it as")


def test_cp1252_after_64_kib_of_ascii_is_read_as_cp1252(tmp_path):
    """The first 64 KiB (here 146 KB) are ASCII: the encoding is still judged by the whole file."""
    path = tmp_path / "pilot.csv"
    body = _csv(3000)
    path.write_bytes(body.encode("ascii") + "P-x,t,037006,2021-03-05,attività,100,5\n".encode("cp1252"))
    assert len(body) > 1 << 16
    text = read_source(path)
    assert text.encoding == "Windows-1252" and text.frame["pratica"].iat[-1] == "attività"
    assert text.note == f"read as Windows-1252: not UTF-8 from byte 0xE0 at offset {len(body) + 31}, line 3002"


def test_utf8_file_with_accents_late_is_utf8(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_text(_csv(3000) + "P-x,t,037006,2021-03-05,attività,100,5\n", encoding="utf-8")
    text = read_source(path)
    assert text.encoding == "UTF-8" and text.note is None and text.frame["pratica"].iat[-1] == "attività"


def test_neither_utf8_nor_cp1252(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_bytes(_csv(2).encode() + b"P9,t,037006,2021-03-05,\x81\x8d,1,1\n")
    assert _unreadable(path).startswith("neither UTF-8 (byte 0x81 at offset")


def test_empty_file_and_ragged_row(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_text("")
    assert _unreadable(path) == "the file is empty (not even a header line)"
    path.write_text(_csv(3) + "a,b,c,d,e,f,g,h,i\n")
    assert "Expected 7 fields in line 5, saw 9" in _unreadable(path)


def test_short_row_is_read_with_empty_cells(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_text(_csv(2) + "P9,t\n")
    assert read_source(path).frame.iloc[-1].isna().sum() == 5


def test_two_headers_for_one_column(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_text(_csv(1).replace("tema,", "Codice ISTAT,", 1))
    assert _unreadable(path) == "columns 'Codice ISTAT', 'codice_istat' are read as the same column " \
                                "'codice_istat': keep one"


def test_repaired_cells_keep_the_text_as_written(tmp_path):
    path = tmp_path / "pilot.csv"
    path.write_text("id_pilota;codice_istat;data_avvio;costo_euro\nP1;37006;25/12/2021;1.234,50\nP2;037006;2021-01-01;7\n")
    text = read_source(path)
    assert text.frame.iloc[0].tolist() == ["P1", "037006", "2021-12-25", "1234.50"]
    assert [text.as_written(c, 0) for c in ("codice_istat", "data_avvio", "costo_euro")] == [
        "37006", "25/12/2021", "1.234,50"]
    assert text.as_written("codice_istat", 1) == "037006"


def test_xlsx_reads_the_first_sheet_and_lists_them(tmp_path):
    path = tmp_path / "pilot.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"Note": ["leggimi"]}).to_excel(book, sheet_name="Istruzioni", index=False)
        pd.read_csv(__import__("io").StringIO(_csv(2)), dtype=str).to_excel(book, sheet_name="Dati", index=False)
    text = read_source(path)
    assert text.sheets == ["Istruzioni", "Dati"] and list(text.frame.columns) == ["note"]
