"""What an uploaded file really is, judged from its first bytes and never from the client's word.

The browser's ``Content-Type`` and the file name come from whoever uploads, so a program renamed
``photo.jpg`` arrives as "image/jpeg". When an upload is confirmed the server reads the bytes
back from storage and calls :func:`sniff` on the first :data:`HEAD_SIZE`; callers compare the answer
with what the material allows and refuse with the :attr:`Sniffed.description` (English, for
logs and messages) or the :data:`TYPE_LABELS` entry (Chinese, for people).

Programs, scripts, web pages and SVG drawings are recognised too, and listed in
:data:`ACTIVE_TYPES`, so that a refusal can say "this is a Windows program" rather than
"unknown type": they run code when opened, which no material of an approval needs.

Pure: bytes in, an answer out; no IO, no Pillow. It never raises, whatever the bytes.
"""

from __future__ import annotations

import codecs
import re
import struct
from dataclasses import dataclass

HEAD_SIZE = 64 * 1024
"""How much of a file :func:`sniff` wants; it reads no further than this."""

PE = "application/vnd.microsoft.portable-executable"
ELF = "application/x-elf"
MACH_O = "application/x-mach-binary"
JAVA_CLASS = "application/java-vm"
JAR = "application/java-archive"
APK = "application/vnd.android.package-archive"
SHORTCUT = "application/x-ms-shortcut"
SHELL_SCRIPT = "text/x-shellscript"
HTML = "text/html"
SVG = "image/svg+xml"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OFD = "application/ofd"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"

ACTIVE_TYPES = frozenset({PE, ELF, MACH_O, JAVA_CLASS, JAR, APK, SHORTCUT, SHELL_SCRIPT, HTML, SVG})
"""Content that runs code when opened or shown: never accepted as a material or a photo."""

_DESCRIPTIONS: dict[str, str] = {
    "image/jpeg": "a JPEG image",
    "image/png": "a PNG image",
    "image/webp": "a WebP image",
    "image/gif": "a GIF image",
    "image/heic": "a HEIC image",
    "image/avif": "an AVIF image",
    "image/tiff": "a TIFF image",
    "image/bmp": "a BMP image",
    "video/mp4": "an MP4 video",
    "video/quicktime": "a QuickTime video",
    "application/pdf": "a PDF document",
    "application/zip": "a ZIP archive",
    DOCX: "a Word document (.docx)",
    XLSX: "an Excel workbook (.xlsx)",
    PPTX: "a PowerPoint presentation (.pptx)",
    OFD: "an OFD document",
    ODT: "an OpenDocument text (.odt)",
    ODS: "an OpenDocument spreadsheet (.ods)",
    ODP: "an OpenDocument presentation (.odp)",
    "application/x-ole-storage": "a legacy Office file (OLE2: .doc, .xls, .ppt)",
    "application/vnd.rar": "a RAR archive",
    "application/x-7z-compressed": "a 7-Zip archive",
    "application/gzip": "a gzip archive",
    "text/plain": "plain text",
    "application/xml": "an XML document",
    PE: "a Windows program (PE executable)",
    ELF: "a Linux program (ELF executable)",
    MACH_O: "a macOS program (Mach-O executable)",
    JAVA_CLASS: "a Java program (class file)",
    JAR: "a Java program (JAR archive)",
    APK: "an Android app (APK)",
    SHORTCUT: "a Windows shortcut (.lnk)",
    SHELL_SCRIPT: "a script (starts with #!)",
    HTML: "a web page (HTML)",
    SVG: "an SVG drawing (can contain scripts)",
}

TYPE_LABELS: dict[str, str] = {
    "image/jpeg": "JPEG 图片",
    "image/png": "PNG 图片",
    "image/webp": "WebP 图片",
    "image/gif": "GIF 图片",
    "image/heic": "HEIC 图片",
    "image/avif": "AVIF 图片",
    "image/tiff": "TIFF 图片",
    "image/bmp": "BMP 图片",
    "video/mp4": "MP4 视频",
    "video/quicktime": "QuickTime 视频",
    "application/pdf": "PDF 文档",
    "application/zip": "ZIP 压缩包",
    DOCX: "Word 文档",
    XLSX: "Excel 表格",
    PPTX: "PowerPoint 演示文稿",
    OFD: "OFD 版式文档",
    ODT: "OpenDocument 文本",
    ODS: "OpenDocument 表格",
    ODP: "OpenDocument 演示文稿",
    "application/x-ole-storage": "旧版 Office 文件（doc/xls/ppt）",
    "application/vnd.rar": "RAR 压缩包",
    "application/x-7z-compressed": "7z 压缩包",
    "application/gzip": "gzip 压缩包",
    "text/plain": "纯文本",
    "application/xml": "XML 文档",
    PE: "Windows 可执行程序",
    ELF: "Linux 可执行程序",
    MACH_O: "macOS 可执行程序",
    JAVA_CLASS: "Java 程序",
    JAR: "Java 程序包（JAR）",
    APK: "安卓应用安装包（APK）",
    SHORTCUT: "Windows 快捷方式",
    SHELL_SCRIPT: "脚本文件",
    HTML: "网页文件（HTML）",
    SVG: "SVG 矢量图（可含脚本）",
}
"""The Chinese name people see for each content type :func:`sniff` can answer."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the bytes are: a content type and a short English description of it."""

    content_type: str
    description: str


def sniff(head: bytes) -> Sniffed | None:
    """What ``head`` (the first up to :data:`HEAD_SIZE` bytes of a file) is; None if unknown.

    Fixed signatures at offset 0 come first, so a program whose name or header claims an
    image is still named a program; markup before plain text, so an HTML page is never
    "text". Too short a head to show a whole signature is unknown, not a guess.
    """
    head = bytes(head[:HEAD_SIZE])
    if not head:
        return None
    content_type = _by_signature(head) or _by_markup(head) or _by_late_signature(head)
    if content_type is None and _is_plain_text(head):
        content_type = "text/plain"
    if content_type is None:
        return None
    return Sniffed(content_type, _DESCRIPTIONS[content_type])


# --- fixed signatures ----------------------------------------------------------------------------

_SIMPLE: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),
    (b"MM\x00+", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"Rar!\x1a\x07\x00", "application/vnd.rar"),
    (b"Rar!\x1a\x07\x01\x00", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x1f\x8b\x08", "application/gzip"),
    (b"\x7fELF", ELF),
    (b"\xfe\xed\xfa\xce", MACH_O),
    (b"\xfe\xed\xfa\xcf", MACH_O),
    (b"\xce\xfa\xed\xfe", MACH_O),
    (b"\xcf\xfa\xed\xfe", MACH_O),
    (b"#!", SHELL_SCRIPT),
    (
        b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F",
        SHORTCUT,
    ),
)

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MIF_BRANDS = frozenset({b"mif1", b"msf1"})
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"3gp4"}
)
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _by_signature(head: bytes) -> str | None:
    for magic, content_type in _SIMPLE:
        if head.startswith(magic):
            return content_type
    if head.startswith(b"MZ"):
        return _dos_program(head)
    if head.startswith((b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")) and len(head) >= 8:
        # Mach-O universal binaries and Java class files share this magic; the next word is
        # a small architecture count in the first, a class-file version (45 or more) in the
        # second.
        (count,) = struct.unpack_from(">I", head, 4)
        return MACH_O if 0 < count < 45 else JAVA_CLASS
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_media(head)
    if len(head) >= 18 and head.startswith(b"BM"):
        (header_size,) = struct.unpack_from("<I", head, 14)
        if header_size in _BMP_HEADER_SIZES:
            return "image/bmp"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(head)
    return None


def _dos_program(head: bytes) -> str | None:
    """``MZ`` opens every Windows program, but two letters are weak: text may start so too.

    A head with the PE signature where the DOS header points is a program; so is any other
    ``MZ`` head that is not plain text (an old DOS program, or a PE header cut short).
    """
    if len(head) >= 64:
        (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
        if head[pe_offset : pe_offset + 4] == b"PE\x00\x00":
            return PE
    return None if _is_plain_text(head) else PE


def _iso_media(head: bytes) -> str | None:
    """ISO base media (``ftyp`` box): HEIC/AVIF photos or MP4/QuickTime videos, by brand."""
    (box_size,) = struct.unpack_from(">I", head, 0)
    major = head[8:12]
    end = min(box_size, len(head)) if box_size >= 16 else 16
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major in _MIF_BRANDS and brands & _AVIF_BRANDS):
        return "image/avif"
    if major in _HEIF_BRANDS or major in _MIF_BRANDS:
        return "image/heic"
    if major == b"qt  ":
        return "video/quicktime"
    if major in _MP4_BRANDS:
        return "video/mp4"
    return None


# --- ZIP and the formats built on it -------------------------------------------------------------


def _zip_kind(head: bytes) -> str:
    """Which ZIP-based format ``head`` is, from the names of its first entries."""
    entries = _zip_entries(head)
    names = [name for name, _ in entries]
    if "AndroidManifest.xml" in names or "classes.dex" in names:
        return APK
    if any(name.upper() == "META-INF/MANIFEST.MF" for name in names):
        return JAR
    if any(name.startswith("word/") for name in names):
        return DOCX
    if any(name.startswith("xl/") for name in names):
        return XLSX
    if any(name.startswith("ppt/") for name in names):
        return PPTX
    if any(name.lower() == "ofd.xml" for name in names):
        return OFD
    if entries and entries[0][0] == "mimetype":
        mimetype = entries[0][1].decode("ascii", "replace").strip()
        if mimetype in (ODT, ODS, ODP):
            return mimetype
    return "application/zip"


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


def _zip_entries(head: bytes) -> list[tuple[str, bytes]]:
    """The (name, stored data) of the local file headers in ``head``, as far as it goes.

    Entries are walked by their sizes; an entry whose size follows its data (a data
    descriptor) stops the walk, and the rest of the head is then searched for further
    headers. Data is only kept for stored (uncompressed) entries, for ODF's ``mimetype``.
    """
    entries: list[tuple[str, bytes]] = []
    position = 4 if head.startswith(b"PK\x07\x08") else 0
    walking = True
    while position + _LOCAL_HEADER.size <= len(head):
        if head[position : position + 4] != _LOCAL_SIGNATURE:
            if not walking:
                break
            walking = False
            position = head.find(_LOCAL_SIGNATURE, position + 1)
            if position < 0:
                break
            continue
        (_, _, flags, method, _, _, _, size, _, name_length, extra_length) = (
            _LOCAL_HEADER.unpack_from(head, position)
        )
        name_start = position + _LOCAL_HEADER.size
        raw_name = head[name_start : name_start + name_length]
        if len(raw_name) < name_length:
            break
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        data_start = name_start + name_length + extra_length
        data = head[data_start : data_start + size] if method == 0 and size < 256 else b""
        entries.append((name, data))
        if walking and not flags & 0x08 and size != 0xFFFFFFFF:
            position = data_start + size
        else:
            walking = False
            position = head.find(_LOCAL_SIGNATURE, name_start)
            if position < 0:
                break
    return entries


# --- markup and text -----------------------------------------------------------------------------

_WHITESPACE = " \t\n\r\f"
_HTML_TAGS = frozenset(
    {"html", "head", "body", "script", "iframe", "h1", "div", "font", "table", "a", "style"}
    | {"title", "b", "br", "p", "meta", "link", "form", "object", "embed"}
)
_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9]*)(?::([A-Za-z][A-Za-z0-9]*))?(?=[\s>/]|$)")
_PROLOG_STEPS = 64


def _decode_markup(head: bytes) -> str | None:
    """The head as text if it may be markup: starts with ``<`` after a BOM and whitespace."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", "replace")
    else:
        text = head.removeprefix(codecs.BOM_UTF8).decode("utf-8", "replace")
    text = text.lstrip("\ufeff" + _WHITESPACE)
    return text if text.startswith("<") else None


def _by_markup(head: bytes) -> str | None:
    """HTML or SVG (which browsers run scripts in), or other XML.

    The XML declaration, comments, processing instructions and a document type declaration
    are skipped; the first element's name decides. A page opening with any of the tags
    browsers take for HTML (the WHATWG sniffing list, and a few more) is HTML.
    """
    text = _decode_markup(head)
    if text is None:
        return None
    is_xml = text.startswith("<?xml")
    position = 0
    for _ in range(_PROLOG_STEPS):
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if text.startswith("<?", position):
            end = text.find("?>", position)
        elif text.startswith("<!--", position):
            end = text.find("-->", position)
            end = end + 1 if end >= 0 else end
        elif text[position : position + 9].lower() == "<!doctype":
            if text[position + 9 : position + 15].strip(_WHITESPACE).lower().startswith("html"):
                return HTML
            end = _doctype_end(text, position)
        else:
            break
        if end < 0:
            return None
        position = end + 2
    match = _TAG.match(text, position)
    if match is None:
        return None
    prefix, local = match.group(1).lower(), (match.group(2) or "").lower()
    name = local or prefix
    if name == "svg":
        return SVG
    if name in _HTML_TAGS:
        return HTML
    return "application/xml" if is_xml else None


def _doctype_end(text: str, start: int) -> int:
    """Where the ``<!DOCTYPE ...>`` at ``start`` ends, minus one (so the caller adds two)."""
    close = text.find(">", start)
    bracket = text.find("[", start)
    if 0 <= bracket < close:
        close = text.find("]", bracket)
        close = text.find(">", close) if close >= 0 else -1
    return close - 1 if close >= 0 else -1


def _by_late_signature(head: bytes) -> str | None:
    """Signatures readers also accept a little way in: a PDF header in its first KiB."""
    return "application/pdf" if b"%PDF-" in head[:1024] else None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _is_plain_text(head: bytes) -> bool:
    """UTF-8 without control characters (tab, newlines and form feed allowed).

    The head may end inside a character, where the file was cut at :data:`HEAD_SIZE`; an
    incomplete last character is not held against it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(head.removeprefix(codecs.BOM_UTF8), final=False)
    except UnicodeDecodeError:
        return False
    if not text:
        return False
    return _CONTROL.search(text) is None
