"""Sniffing: what the bytes are, whatever the name and the client's content type claim."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from approval.files import sniff as sniff_module
from approval.files.sniff import (
    ACTIVE_TYPES,
    DOCX,
    HEAD_SIZE,
    PPTX,
    TYPE_LABELS,
    XLSX,
    Sniffed,
    sniff,
)
from tests.photo_support import make_jpeg, make_png

# --- building real minimal files -----------------------------------------------------------------


def _pillow(format: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (8, 6), 120).save(out, format)
    return out.getvalue()


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", len(body) + 4) + body + b"\x00\x00\x00\x08free"


def _zip(names: list[str], *, streamed: bool = False, stored_first: bytes | None = None) -> bytes:
    """A real ZIP with these entries; ``streamed`` writes it as to a pipe (data descriptors)."""
    buffer = io.BytesIO()
    target = _Pipe(buffer) if streamed else buffer
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        if stored_first is not None:
            archive.writestr(names[0], stored_first, compress_type=zipfile.ZIP_STORED)
            names = names[1:]
        for name in names:
            archive.writestr(name, f"<xml>{name}</xml>" * 20)
    return buffer.getvalue()


class _Pipe:
    """A write-only stream: zipfile cannot seek back, so it writes sizes after the data."""

    def __init__(self, buffer: io.BytesIO) -> None:
        self._buffer = buffer

    def write(self, data: bytes) -> int:
        return self._buffer.write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _pe() -> bytes:
    """A DOS header pointing at a PE header for an i386 program, and some code after it."""
    dos = bytearray(b"MZ" + b"\x90\x00" + b"\x00" * 60)
    struct.pack_into("<I", dos, 0x3C, 0x80)
    stub = b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21This program cannot be run in DOS mode.\r\n$"
    stub = stub.ljust(0x80 - len(dos), b"\x00")
    pe = b"PE\x00\x00" + struct.pack("<HH", 0x14C, 3) + b"\x00" * 200
    return bytes(dos) + stub + pe


DOCX_NAMES = ["[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/styles.xml"]
XLSX_NAMES = ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/worksheets/s1.xml"]
OFD_NAMES = ["OFD.xml", "Doc_0/Document.xml", "Doc_0/Pages/Page_0/Content.xml"]
ELF_HEADER = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HH", 2, 0x3E) + b"\x00" * 40
MACHO_HEADER = b"\xcf\xfa\xed\xfe" + struct.pack("<II", 0x01000007, 3) + b"\x00" * 40
FAT_MACHO = b"\xca\xfe\xba\xbe" + struct.pack(">I", 2) + b"\x00" * 40
JAVA_CLASS = b"\xca\xfe\xba\xbe" + struct.pack(">HH", 0, 52) + b"\x00" * 40
SVG_WITH_PROLOG = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    b"<!-- Generator: Adobe Illustrator 24.0.0 -->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd" [\n'
    b'  <!ENTITY ns_flows "http://ns.adobe.com/Flows/1.0/">\n'
    b"]>\n"
    b'<svg version="1.1" xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)

SAMPLES: dict[str, tuple[bytes, str]] = {
    "jpeg": (make_jpeg(), "image/jpeg"),
    "png": (make_png(), "image/png"),
    "webp": (_pillow("WEBP"), "image/webp"),
    "gif": (_pillow("GIF", "L"), "image/gif"),
    "tiff": (_pillow("TIFF"), "image/tiff"),
    "bmp": (_pillow("BMP"), "image/bmp"),
    "heic": (_ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
    "heix": (_ftyp(b"heix", b"mif1", b"heix"), "image/heic"),
    "mif1 heic": (_ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
    "avif": (_ftyp(b"avif", b"mif1", b"avif"), "image/avif"),
    "mif1 avif": (_ftyp(b"mif1", b"mif1", b"avif"), "image/avif"),
    "mp4": (_ftyp(b"isom", b"isom", b"mp41"), "video/mp4"),
    "mov": (_ftyp(b"qt  ", b"qt  "), "video/quicktime"),
    "pdf": (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        "application/pdf",
    ),
    "pdf after junk": (b"\r\n\x00junk\n%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    "zip": (_zip(["readme.txt", "photos/1.jpg"]), "application/zip"),
    "empty zip": (_zip([]), "application/zip"),
    "docx": (_zip(DOCX_NAMES), DOCX),
    "docx streamed": (_zip(DOCX_NAMES, streamed=True), DOCX),
    "xlsx": (_zip(XLSX_NAMES), XLSX),
    "pptx": (_zip(["[Content_Types].xml", "ppt/presentation.xml"]), PPTX),
    "ofd": (_zip(OFD_NAMES), "application/ofd"),
    "odt": (
        _zip(["mimetype", "content.xml"], stored_first=b"application/vnd.oasis.opendocument.text"),
        "application/vnd.oasis.opendocument.text",
    ),
    "ods": (
        _zip(["mimetype", "content.xml"], stored_first=sniff_module.ODS.encode()),
        sniff_module.ODS,
    ),
    "odp": (
        _zip(["mimetype", "content.xml"], stored_first=sniff_module.ODP.encode()),
        sniff_module.ODP,
    ),
    "jar": (_zip(["META-INF/MANIFEST.MF", "a/Main.class"]), "application/java-archive"),
    "apk": (
        _zip(["AndroidManifest.xml", "classes.dex"]),
        "application/vnd.android.package-archive",
    ),
    "ole2": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "application/x-ole-storage"),
    "rar": (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 20, "application/vnd.rar"),
    "7z": (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "application/x-7z-compressed"),
    "gzip": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\x00" * 10, "application/gzip"),
    "text": ("项目名称：某某厂房\nOwner: ACME\tLtd.\r\n".encode(), "text/plain"),
    "text with bom": (b"\xef\xbb\xbfhello\n", "text/plain"),
    "xml": (b'<?xml version="1.0"?>\n<project><name>x</name></project>', "application/xml"),
    "pe": (_pe(), "application/vnd.microsoft.portable-executable"),
    "dos program": (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 10, sniff_module.PE),
    "elf": (ELF_HEADER, "application/x-elf"),
    "mach-o": (MACHO_HEADER, "application/x-mach-binary"),
    "mach-o universal": (FAT_MACHO, "application/x-mach-binary"),
    "java class": (JAVA_CLASS, "application/java-vm"),
    "lnk": (
        b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F" + b"\0" * 60,
        "application/x-ms-shortcut",
    ),
    "shell": (b"#!/bin/sh\nrm -rf /\n", "text/x-shellscript"),
    "python script": (b"#!/usr/bin/env python3\nprint(1)\n", "text/x-shellscript"),
    "html doctype": (b"<!DOCTYPE html>\n<html><body>hi</body></html>", "text/html"),
    "html tag": (b"<html>\n<script>alert(1)</script>", "text/html"),
    "html after bom and space": (b"\xef\xbb\xbf \r\n\t<!doctype HTML><p>x", "text/html"),
    "html utf-16": ("\ufeff\n<HTML><body>".encode("utf-16-le"), "text/html"),
    "html script only": (b"  <script src=//evil></script>", "text/html"),
    "html after comment": (b"<!-- saved from url -->\n<head><title>x", "text/html"),
    "xhtml": (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">', "text/html"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml"),
    "svg with prolog": (SVG_WITH_PROLOG, "image/svg+xml"),
    "svg namespaced": (b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg">', "image/svg+xml"),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_kind_is_recognised(name: str) -> None:
    data, expected = SAMPLES[name]
    found = sniff(data)
    assert found is not None, name
    assert found.content_type == expected
    assert found.description == sniff_module._DESCRIPTIONS[expected]
    assert TYPE_LABELS[expected]


def test_the_samples_cover_every_type_and_every_type_has_a_label_and_a_description() -> None:
    assert {expected for _, expected in SAMPLES.values()} == set(TYPE_LABELS)
    assert set(TYPE_LABELS) == set(sniff_module._DESCRIPTIONS)
    assert set(TYPE_LABELS) >= ACTIVE_TYPES


def test_descriptions_and_labels_read_as_expected() -> None:
    assert sniff(make_jpeg()) == Sniffed("image/jpeg", "a JPEG image")
    assert sniff(_pe()) == Sniffed(sniff_module.PE, "a Windows program (PE executable)")
    assert TYPE_LABELS["image/jpeg"] == "JPEG 图片"
    assert TYPE_LABELS["application/pdf"] == "PDF 文档"


def test_a_program_renamed_to_jpg_is_named_a_program() -> None:
    """Nothing but the bytes reaches sniff: the .jpg name and image/jpeg header do not count."""
    found = sniff(_pe()[:HEAD_SIZE])
    assert found is not None
    assert found.content_type == sniff_module.PE
    assert found.content_type in ACTIVE_TYPES


def test_programs_scripts_and_markup_are_active_and_documents_are_not() -> None:
    active = {name for name, (_, expected) in SAMPLES.items() if expected in ACTIVE_TYPES}
    assert {"pe", "elf", "mach-o", "shell", "html tag", "svg", "jar", "apk"} <= active
    for name in ("jpeg", "pdf", "docx", "ofd", "text", "xml"):
        assert SAMPLES[name][1] not in ACTIVE_TYPES


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",
        b"\x89PNG\r\n",
        b"\xd0\xcf\x11\xe0",
        b"\x7fEL",
        b"RIFF\x00\x00\x00\x00WEB\x80",
        b"\x00\x00\x00\x18ftypxxxx\x00\x00\x00\x00",
        b"\x00\x01\x02\x03\x04",
        "café au lait".encode("latin-1"),
        b"line one\x00line two",
        b"bell\x07",
    ],
)
def test_unknown_truncated_and_binary_heads_are_none(data: bytes) -> None:
    assert sniff(data) is None


def test_text_is_only_utf8_without_control_characters() -> None:
    assert sniff("中文".encode("gb18030")) is None
    assert sniff("中文".encode("utf-16")) is None
    cut = ("验收记录" * 30000).encode()[:HEAD_SIZE]  # 64 KiB ends inside a character
    found = sniff(cut)
    assert found is not None and found.content_type == "text/plain"


def test_text_starting_with_mz_is_text_not_a_program() -> None:
    found = sniff(b"MZ-2024 site notes: all checks passed.\n" * 3)
    assert found is not None and found.content_type == "text/plain"


def test_a_pe_with_its_header_cut_off_is_still_a_program() -> None:
    found = sniff(_pe()[:70])
    assert found is not None and found.content_type == sniff_module.PE


def test_only_the_head_is_read() -> None:
    # An HTML page after 64 KiB of spaces is past what sniff looks at: it sees text.
    found = sniff(b" " * HEAD_SIZE + b"<html>")
    assert found is not None and found.content_type == "text/plain"


def test_a_zip_of_office_names_later_in_the_head_is_still_found() -> None:
    names = [f"customXml/item{i}.xml" for i in range(30)] + ["word/document.xml"]
    found = sniff(_zip(["[Content_Types].xml", *names])[:HEAD_SIZE])
    assert found is not None and found.content_type == DOCX


@given(st.binary(max_size=4096))
@settings(max_examples=500)
def test_sniff_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    found = sniff(data)
    assert found is None or found.content_type in TYPE_LABELS


_PREFIXES = sorted({data[:24] for data, _ in SAMPLES.values()} | {b"MZ", b"PK\x03\x04"})


@given(st.sampled_from(_PREFIXES), st.binary(max_size=2048))
@settings(max_examples=500)
def test_sniff_never_raises_on_known_signatures_with_arbitrary_tails(
    prefix: bytes, tail: bytes
) -> None:
    found = sniff(prefix + tail)
    assert found is None or found.content_type in TYPE_LABELS
