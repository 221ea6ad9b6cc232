"""Photos the evidence and sniffing tests share: real JPEGs and PNGs with chosen EXIF."""

from __future__ import annotations

import io
import random
from datetime import datetime

from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

Color = tuple[int, int, int]


def make_jpeg(
    *,
    width: int = 64,
    height: int = 48,
    color: Color = (200, 30, 30),
    taken_at: datetime | None = None,
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    quality: int = 90,
    noise: bool = False,
) -> bytes:
    """A JPEG of one colour (or ``noise`` around it, for the sizes of real photos).

    ``taken_at`` becomes DateTimeOriginal (its own tzinfo is ignored: EXIF has none),
    ``offset`` ("+08:00") OffsetTimeOriginal, ``gps`` (signed latitude, longitude) the
    GPS IFD as degree/minute/second rationals with N/S/E/W refs.
    """
    image = _noise(width, height, color) if noise else Image.new("RGB", (width, height), color)
    return jpeg_of(
        image,
        taken_at=taken_at,
        offset=offset,
        gps=gps,
        orientation=orientation,
        quality=quality,
    )


def jpeg_of(
    image: Image.Image,
    *,
    taken_at: datetime | None = None,
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    quality: int = 90,
    gps_ifd: dict[int, object] | None = None,
) -> bytes:
    """``image`` as a JPEG with these EXIF fields; ``gps_ifd`` writes a GPS IFD verbatim."""
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    sub: dict[int, object] = {}
    if taken_at is not None:
        sub[ExifTags.Base.DateTimeOriginal] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
    if offset is not None:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    if sub:
        exif[ExifTags.IFD.Exif] = sub
    if gps is not None:
        gps_ifd = gps_tags(*gps)
    if gps_ifd is not None:
        exif[ExifTags.IFD.GPSInfo] = gps_ifd
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def gps_tags(latitude: float, longitude: float) -> dict[int, object]:
    """A GPS IFD for a signed position: unsigned degrees, minutes, seconds and a ref each."""
    return {
        ExifTags.GPS.GPSLatitudeRef: "N" if latitude >= 0 else "S",
        ExifTags.GPS.GPSLatitude: _dms(abs(latitude)),
        ExifTags.GPS.GPSLongitudeRef: "E" if longitude >= 0 else "W",
        ExifTags.GPS.GPSLongitude: _dms(abs(longitude)),
    }


def _dms(degrees: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    seconds = round(((degrees - whole) * 60 - minutes) * 60 * 10000)
    return IFDRational(whole, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def _noise(width: int, height: int, color: Color) -> Image.Image:
    """``color`` with random grain, generated at half size and scaled up: photo-like sizes."""
    rng = random.Random(f"{width}x{height}")
    small = (max(width // 2, 1), max(height // 2, 1))
    grain = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    grain = grain.resize((width, height), Image.Resampling.BILINEAR)
    return Image.blend(Image.new("RGB", (width, height), color), grain, 0.35)


def make_png(
    *,
    width: int = 32,
    height: int = 24,
    color: Color = (30, 120, 200),
    alpha: int | None = None,
) -> bytes:
    """A small PNG of one colour; with ``alpha`` an RGBA one of that opacity."""
    if alpha is None:
        image = Image.new("RGB", (width, height), color)
    else:
        image = Image.new("RGBA", (width, height), (*color, alpha))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
