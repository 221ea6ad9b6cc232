"""Photo evidence: capture time, position and displayed size from EXIF; thumbnails."""

from __future__ import annotations

import contextlib
import io
import struct
import time
import zlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, JpegImagePlugin
from PIL.TiffImagePlugin import IFDRational

from approval.files.evidence import EvidenceError, PhotoEvidence, make_thumbnail, read_evidence
from tests.photo_support import gps_tags, jpeg_of, make_jpeg, make_png

SHANGHAI = ZoneInfo("Asia/Shanghai")
TAKEN = datetime(2024, 5, 6, 7, 8, 9)
RED = (220, 20, 20)
BLUE = (20, 20, 220)


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _close(actual: tuple[int, ...], expected: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - e) <= slack for a, e in zip(actual[:3], expected, strict=True))


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _jpeg_with_ifd0_datetime(value: str, *, offset: str | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = value
    if offset is not None:
        exif[ExifTags.IFD.Exif] = {ExifTags.Base.OffsetTime: offset}
    out = io.BytesIO()
    Image.new("RGB", (16, 16), RED).save(out, "JPEG", exif=exif)
    return out.getvalue()


# --- time ----------------------------------------------------------------------------------------


def test_a_photo_without_exif_has_only_its_size() -> None:
    assert read_evidence(make_jpeg(width=64, height=48)) == PhotoEvidence(
        taken_at=None, latitude=None, longitude=None, width=64, height=48, orientation=1
    )


def test_taken_at_without_offset_is_in_the_center_zone() -> None:
    taken_at = read_evidence(make_jpeg(taken_at=TAKEN)).taken_at
    assert taken_at == TAKEN.replace(tzinfo=SHANGHAI)
    assert taken_at is not None and taken_at.utcoffset() == timedelta(hours=8)


def test_taken_at_without_offset_uses_the_given_default_zone() -> None:
    taken_at = read_evidence(make_jpeg(taken_at=TAKEN), default_tz=UTC).taken_at
    assert taken_at == TAKEN.replace(tzinfo=UTC)


def test_taken_at_with_offset_uses_the_offset() -> None:
    taken_at = read_evidence(make_jpeg(taken_at=TAKEN, offset="-05:30")).taken_at
    assert taken_at is not None
    assert taken_at.utcoffset() == -timedelta(hours=5, minutes=30)
    assert taken_at == datetime(2024, 5, 6, 12, 38, 9, tzinfo=UTC)


def test_a_malformed_offset_falls_back_to_the_default_zone() -> None:
    taken_at = read_evidence(make_jpeg(taken_at=TAKEN, offset="+8")).taken_at
    assert taken_at == TAKEN.replace(tzinfo=SHANGHAI)
    taken_at = read_evidence(make_jpeg(taken_at=TAKEN, offset="+25:00")).taken_at
    assert taken_at == TAKEN.replace(tzinfo=SHANGHAI)


def test_datetime_is_the_fallback_with_its_own_offset() -> None:
    data = _jpeg_with_ifd0_datetime("2023:12:31 23:59:58")
    assert read_evidence(data).taken_at == datetime(2023, 12, 31, 23, 59, 58, tzinfo=SHANGHAI)
    data = _jpeg_with_ifd0_datetime("2023:12:31 23:59:58", offset="+00:00")
    assert read_evidence(data).taken_at == datetime(2023, 12, 31, 23, 59, 58, tzinfo=UTC)


def test_the_original_time_wins_over_datetime() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "2025:01:01 00:00:00"
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: "2024:05:06 07:08:09"}
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif)
    assert read_evidence(out.getvalue()).taken_at == TAKEN.replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "    :  :     :  :  ", "", "yesterday"])
def test_blank_or_impossible_times_are_none(value: str) -> None:
    assert read_evidence(_jpeg_with_ifd0_datetime(value)).taken_at is None


# --- position ------------------------------------------------------------------------------------


def test_gps_north_east() -> None:
    evidence = read_evidence(make_jpeg(gps=(31.2304, 121.4737)))
    assert evidence.latitude == pytest.approx(31.2304, abs=1e-6)
    assert evidence.longitude == pytest.approx(121.4737, abs=1e-6)


def test_gps_south_west_is_negative() -> None:
    evidence = read_evidence(make_jpeg(gps=(-22.9068, -43.1729)))
    assert evidence.latitude == pytest.approx(-22.9068, abs=1e-6)
    assert evidence.longitude == pytest.approx(-43.1729, abs=1e-6)


def _gps(**changes: object) -> dict[int, object]:
    tags = gps_tags(31.2304, 121.4737)
    for name, value in changes.items():
        tag = ExifTags.GPS[name]
        if value is None:
            del tags[tag]
        else:
            tags[tag] = value
    return tags


@pytest.mark.parametrize(
    "gps",
    [
        _gps(GPSLatitude=(IFDRational(31, 1), IFDRational(0, 0), IFDRational(0, 0))),
        _gps(GPSLongitude=(IFDRational(121, 0), IFDRational(0, 1), IFDRational(0, 1))),
        _gps(GPSLatitude=(IFDRational(95, 1), IFDRational(0, 1), IFDRational(0, 1))),
        _gps(GPSLongitude=(IFDRational(181, 1), IFDRational(0, 1), IFDRational(0, 1))),
        _gps(GPSLatitude=(IFDRational(31, 1), IFDRational(75, 1), IFDRational(0, 1))),
        _gps(GPSLatitudeRef="X"),
        _gps(GPSLongitudeRef=None),
        _gps(GPSLatitude=None),
        _gps(GPSLatitude=(IFDRational(31, 1),) * 4),
    ],
    ids=[
        "zero denominators",
        "zero degree denominator",
        "latitude beyond 90",
        "longitude beyond 180",
        "75 minutes",
        "unknown ref",
        "missing ref",
        "missing latitude",
        "four parts",
    ],
)
def test_malformed_gps_is_ignored(gps: dict[int, object]) -> None:
    evidence = read_evidence(jpeg_of(Image.new("RGB", (16, 12)), taken_at=TAKEN, gps_ifd=gps))
    assert (evidence.latitude, evidence.longitude) == (None, None)
    assert evidence.taken_at == TAKEN.replace(tzinfo=SHANGHAI)  # the rest is still read
    assert (evidence.width, evidence.height) == (16, 12)


# --- orientation and size ------------------------------------------------------------------------


def _left_red_right_blue(width: int = 80, height: int = 40) -> Image.Image:
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image


def test_orientation_6_swaps_width_and_height() -> None:
    evidence = read_evidence(make_jpeg(width=64, height=48, orientation=6))
    assert (evidence.width, evidence.height, evidence.orientation) == (48, 64, 6)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4])
def test_orientations_1_to_4_keep_width_and_height(orientation: int) -> None:
    evidence = read_evidence(make_jpeg(width=64, height=48, orientation=orientation))
    assert (evidence.width, evidence.height, evidence.orientation) == (64, 48, orientation)


@pytest.mark.parametrize("orientation", [5, 7, 8])
def test_orientations_5_to_8_swap(orientation: int) -> None:
    evidence = read_evidence(make_jpeg(width=64, height=48, orientation=orientation))
    assert (evidence.width, evidence.height) == (48, 64)


def test_an_invalid_orientation_counts_as_upright() -> None:
    evidence = read_evidence(make_jpeg(width=64, height=48, orientation=9))
    assert (evidence.width, evidence.height, evidence.orientation) == (64, 48, 1)


def test_the_thumbnail_of_orientation_6_is_upright() -> None:
    """Orientation 6: the stored left edge is the displayed top, so red on top, blue below."""
    data = jpeg_of(_left_red_right_blue(), orientation=6)
    thumbnail = _open(make_thumbnail(data))
    assert thumbnail.size == (40, 80)
    assert _close(thumbnail.getpixel((20, 10)), RED)  # type: ignore[arg-type]
    assert _close(thumbnail.getpixel((20, 70)), BLUE)  # type: ignore[arg-type]


def test_the_thumbnail_without_orientation_keeps_the_layout() -> None:
    thumbnail = _open(make_thumbnail(jpeg_of(_left_red_right_blue())))
    assert thumbnail.size == (80, 40)
    assert _close(thumbnail.getpixel((10, 20)), RED)  # type: ignore[arg-type]
    assert _close(thumbnail.getpixel((70, 20)), BLUE)  # type: ignore[arg-type]


# --- thumbnails ----------------------------------------------------------------------------------


def test_a_big_photo_becomes_a_small_jpeg_without_exif() -> None:
    data = make_jpeg(
        width=2048, height=1536, noise=True, quality=95, taken_at=TAKEN, gps=(31.2, 121.4)
    )
    assert 1_000_000 < len(data) < 3_500_000
    thumbnail = make_thumbnail(data)
    assert thumbnail.startswith(b"\xff\xd8\xff")
    image = _open(thumbnail)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (320, 240))
    assert "exif" not in image.info
    assert dict(image.getexif()) == {}
    assert read_evidence(thumbnail).latitude is None
    assert len(thumbnail) < 60_000


def test_the_thumbnail_respects_max_side_for_portrait_photos() -> None:
    data = make_jpeg(width=300, height=1200)
    assert _open(make_thumbnail(data, max_side=100)).size == (25, 100)


def test_a_small_photo_is_not_enlarged() -> None:
    assert _open(make_thumbnail(make_jpeg(width=40, height=30))).size == (40, 30)


def test_big_jpegs_are_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    drafts: list[tuple[str | None, tuple[int, int] | None]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        drafts.append((mode, size))
        result = draft(self, mode, size)
        drafts.append(("decoded", self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    make_thumbnail(make_jpeg(width=4000, height=3000))
    assert drafts[0] == ("RGB", (320, 320))
    assert drafts[1] == ("decoded", (500, 375))  # an eighth of the pixels in each direction


def test_a_png_with_alpha_becomes_an_rgb_jpeg_on_white() -> None:
    thumbnail = make_thumbnail(make_png(width=40, height=20, color=(10, 200, 10), alpha=0))
    image = _open(thumbnail)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (40, 20))
    assert _close(image.getpixel((5, 5)), (255, 255, 255), slack=8)  # type: ignore[arg-type]
    opaque = _open(make_thumbnail(make_png(color=(10, 200, 10), alpha=255)))
    assert _close(opaque.getpixel((5, 5)), (10, 200, 10), slack=8)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "format", "color"),
    [
        ("P", "GIF", 3),
        ("CMYK", "JPEG", (0, 255, 255, 0)),
        ("L", "PNG", 128),
        ("I;16", "PNG", 40000),
        ("LA", "PNG", (90, 255)),
        ("RGB", "WEBP", (1, 2, 3)),
        ("RGB", "TIFF", (1, 2, 3)),
    ],
)
def test_other_modes_and_formats_become_rgb_jpegs(
    mode: str, format: str, color: int | tuple[int, ...]
) -> None:
    out = io.BytesIO()
    Image.new(mode, (30, 20), color).save(out, format)
    image = _open(make_thumbnail(out.getvalue()))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (30, 20))


def test_a_transparent_gif_is_laid_on_white() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    out = io.BytesIO()
    image.save(out, "GIF", transparency=0)
    thumbnail = _open(make_thumbnail(out.getvalue()))
    assert _close(thumbnail.getpixel((5, 5)), (255, 255, 255), slack=8)  # type: ignore[arg-type]


@pytest.mark.parametrize(("max_side", "quality"), [(0, 80), (320, 0), (320, 100)])
def test_thumbnail_arguments_are_checked(max_side: int, quality: int) -> None:
    with pytest.raises(ValueError):
        make_thumbnail(make_jpeg(), max_side=max_side, quality=quality)


# --- not images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world", b"\x00" * 100, b"%PDF-1.7\n", b"MZ\x90\x00" + b"\x00" * 200],
    ids=["empty", "text", "zeros", "pdf", "program"],
)
def test_garbage_is_an_evidence_error(data: bytes) -> None:
    with pytest.raises(EvidenceError):
        read_evidence(data)
    with pytest.raises(EvidenceError):
        make_thumbnail(data)


def test_evidence_error_is_a_value_error_with_a_message() -> None:
    with pytest.raises(ValueError, match="not an image"):
        read_evidence(b"hello, world")


def test_a_truncated_jpeg_has_evidence_but_no_thumbnail() -> None:
    data = make_jpeg(width=256, height=256, noise=True)
    truncated = data[: len(data) // 2]
    assert read_evidence(truncated).width == 256  # the header is whole
    with pytest.raises(EvidenceError, match="cannot be decoded"):
        make_thumbnail(truncated)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    ("width", "height"),
    [(20_000, 20_000), (10_000, 10_000)],
    ids=["beyond twice the limit", "between the limit and twice it"],
)
def test_a_decompression_bomb_is_an_evidence_error_not_a_warning(width: int, height: int) -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    assert width * height > Image.MAX_IMAGE_PIXELS
    data = _png_header(width, height)
    with pytest.raises(EvidenceError, match="decompression bomb"):
        read_evidence(data)
    with pytest.raises(EvidenceError, match="decompression bomb"):
        make_thumbnail(data)


@pytest.mark.filterwarnings("error")
def test_a_jpeg_claiming_a_huge_size_is_refused() -> None:
    data = bytearray(make_jpeg(width=16, height=16))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 30_000, 30_000)  # height, width
    with pytest.raises(EvidenceError, match="30000x30000"):
        read_evidence(bytes(data))


_PHOTO = make_jpeg(width=48, height=32, taken_at=TAKEN, offset="+08:00", gps=(31.2, 121.4))


# Pillow warns (UserWarning) about the corrupt EXIF it skips; that is its business, not ours.
@pytest.mark.filterwarnings("ignore::UserWarning")
@given(st.lists(st.tuples(st.integers(0, len(_PHOTO) - 1), st.integers(0, 255)), max_size=8))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_corrupted_photos_give_evidence_or_an_evidence_error(
    changes: list[tuple[int, int]],
) -> None:
    data = bytearray(_PHOTO)
    for position, value in changes:
        data[position] = value
    for read in (read_evidence, make_thumbnail):
        with contextlib.suppress(EvidenceError):
            read(bytes(data))


def test_a_huge_png_is_not_decoded_for_its_thumbnail() -> None:
    """8000x8000 pixels in a PNG of a few hundred KiB: a full decode would take 192 MB of RGB
    and seconds; the thumbnail refuses it at once, from the header."""
    out = io.BytesIO()
    Image.new("P", (8000, 8000), 3).save(out, "PNG")
    data = out.getvalue()
    assert len(data) < 400 * 1024
    started = time.perf_counter()
    with pytest.raises(EvidenceError, match="8000x8000"):
        make_thumbnail(data)
    assert time.perf_counter() - started < 0.2


def test_a_large_jpeg_is_decoded_at_reduced_size() -> None:
    out = io.BytesIO()
    Image.new("RGB", (6000, 4500), (200, 30, 30)).save(out, "JPEG", quality=70)
    thumbnail = Image.open(io.BytesIO(make_thumbnail(out.getvalue())))
    assert max(thumbnail.size) == 320  # 27 megapixels, decoded at 1/8 within the budget
