"""Photo evidence: when and where a site photo was taken (EXIF), and its thumbnail.

Inspectors' photos back up what an inspection record says, so the server reads the camera's
own account from the bytes rather than trusting the tablet's form: the capture time, the GPS
position and the size as shown. Cameras write EXIF carelessly (no time zone, GPS with zero
denominators when there was no fix), so anything malformed is left out, never guessed and
never fatal; only bytes that are not a readable image at all fail, with :class:`EvidenceError`.

Pure and thread-safe: bytes in, values out, no IO. Callers run these in a worker thread, so
nothing here touches process-wide state; in particular the decompression-bomb guard does not
use :mod:`warnings` filters (which are global) but checks the pixel count itself.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from PIL import ExifTags, Image, ImageFile, ImageOps

from approval.core.dates import CHINA

# The formats a site photo may come in; Image.open would also try PostScript (run through
# Ghostscript), fonts, icons and the like, none of which a camera or a tablet produces.
# HEIF and AVIF are only available when their Pillow plugins are installed.
_PHOTO_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "HEIF", "AVIF")

# What a broken or hostile image makes Pillow raise, while opening or decoding.
_PILLOW_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    Image.DecompressionBombError,
)

_DATETIME = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})\s*$")

# (time tag, its offset tag), most to least trustworthy: the moment the shutter opened, the
# moment it was digitised, and the last time the file was changed.
_TIME_TAGS = (
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    (ExifTags.Base.DateTime, ExifTags.Base.OffsetTime),
)


class EvidenceError(ValueError):
    """The bytes are not an image that can be read, or too large to decode safely."""


@dataclass(frozen=True, slots=True)
class PhotoEvidence:
    """What a photo says about itself.

    ``width`` and ``height`` are as displayed, after the EXIF ``orientation`` (1 to 8; 1
    when absent or invalid): a portrait photo stored sideways with orientation 6 is taller
    than wide here. ``taken_at`` is aware; latitude and longitude are signed decimal
    degrees (south and west negative), both None unless both are well formed.
    """

    taken_at: datetime | None
    latitude: float | None
    longitude: float | None
    width: int
    height: int
    orientation: int


def read_evidence(data: bytes, *, default_tz: tzinfo = CHINA) -> PhotoEvidence:
    """The capture time, position and displayed size of the photo in ``data``.

    The time is DateTimeOriginal, else DateTimeDigitized, else DateTime, each with its own
    EXIF offset tag when that is well formed and ``default_tz`` (the center's zone: cameras
    are set to local time) otherwise. Only the header is parsed; pixels are not decoded.
    """
    with _open(data) as image:
        # The EXIF sub-IFDs are read lazily, from the image's file: read them before closing.
        exif = _exif(image)
        orientation = _orientation(exif)
        width, height = image.size
        taken_at = _taken_at(exif, default_tz)
        latitude, longitude = _position(_ifd(exif, ExifTags.IFD.GPSInfo))
    if orientation >= 5:
        width, height = height, width
    return PhotoEvidence(
        taken_at=taken_at,
        latitude=latitude,
        longitude=longitude,
        width=width,
        height=height,
        orientation=orientation,
    )


# Pixels a thumbnail may decode. A JPEG is decoded at a reduced scale (draft: 1/2 to 1/8), so
# any camera's photo fits; other formats decode at full size, so an 8000x8000 PNG of 182 KiB
# (64 megapixels, 192 MB of RGB) is refused instead.
DECODE_PIXEL_BUDGET = 24_000_000


def make_thumbnail(data: bytes, *, max_side: int = 320, quality: int = 80) -> bytes:
    """A small upright RGB JPEG of the image in ``data``, longer side at most ``max_side``.

    JPEGs are decoded at a reduced scale (``draft``) so a 12-megapixel photo costs a
    fraction of a full decode. Transparency is flattened onto white. The output carries no
    EXIF, ICC profile or comment: the evidence is read from the original, and a thumbnail
    should not repeat the position to whoever sees it.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    if not 1 <= quality <= 95:
        raise ValueError(f"quality must be between 1 and 95, not {quality}")
    with _open(data) as image:
        image.draft("RGB", (max_side, max_side))
        width, height = image.size  # what will be decoded: reduced already for a JPEG
        if width * height > DECODE_PIXEL_BUDGET:
            raise EvidenceError(
                f"a thumbnail of this {image.format} would decode {width}x{height} pixels at "
                f"full size, more than the {DECODE_PIXEL_BUDGET} allowed; send a JPEG (decoded "
                "at reduced size) or a smaller image"
            )
        try:
            image.load()
        except _PILLOW_ERRORS as error:
            raise EvidenceError(f"the image cannot be decoded ({_reason(error)})") from error
        try:
            upright = ImageOps.exif_transpose(image)
        except _PILLOW_ERRORS:
            upright = image.copy()  # broken EXIF: show the pixels as stored
    try:
        upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        thumbnail = _to_rgb(upright)
        thumbnail.info.clear()
        out = io.BytesIO()
        thumbnail.save(out, "JPEG", quality=quality, optimize=True)
    except _PILLOW_ERRORS as error:
        raise EvidenceError(f"the image cannot be converted ({_reason(error)})") from error
    return out.getvalue()


# --- opening -------------------------------------------------------------------------------------


def _open(data: bytes) -> ImageFile.ImageFile:
    """The image in ``data``, header parsed, pixels not yet decoded.

    Tries the photo formats' own openers, as ``Image.open`` does, but checks the size
    against ``Image.MAX_IMAGE_PIXELS`` itself: ``Image.open`` only warns between the limit
    and twice the limit, and turning that warning into an error would need a process-wide
    filter. Anything above the limit is refused here.
    """
    if not data:
        raise EvidenceError("the file is empty, not an image")
    Image.preinit()
    prefix = bytes(data[:16])
    reason = "no photo format (JPEG, PNG, WebP, GIF, TIFF, BMP) recognises it"
    for name in _PHOTO_FORMATS:
        if name not in Image.OPEN:
            Image.init()
        opener = Image.OPEN.get(name)
        if opener is None:
            continue
        factory, accept = opener
        try:
            accepted = accept is None or accept(prefix)
            if isinstance(accepted, str) or not accepted:
                continue
            image = factory(io.BytesIO(data), "")
        except _PILLOW_ERRORS as error:
            reason = f"it looks like {name} but {_reason(error)}"
            continue
        _check_pixels(image)
        return image
    raise EvidenceError(f"the file is not an image that can be read: {reason}")


def _check_pixels(image: ImageFile.ImageFile) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and max(width, 1) * max(height, 1) > limit:
        image.close()
        raise EvidenceError(
            f"the image claims {width}x{height} pixels, more than the {limit} that are safe "
            "to decode (a decompression bomb, or a scan far larger than a photo)"
        )


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as RGB, anything transparent laid on white (JPEG has no alpha)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        # Wide greyscale (16-bit PNG and TIFF): scale to 8 bits rather than clip.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


# --- EXIF ----------------------------------------------------------------------------------------


def _exif(image: Image.Image) -> Image.Exif:
    try:
        return image.getexif()
    except _PILLOW_ERRORS:
        return Image.Exif()


def _ifd(exif: Image.Exif, tag: ExifTags.IFD) -> Mapping[int, Any]:
    try:
        return exif.get_ifd(tag)
    except _PILLOW_ERRORS:
        return {}


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(ExifTags.Base.Orientation)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _taken_at(exif: Image.Exif, default_tz: tzinfo) -> datetime | None:
    sub = _ifd(exif, ExifTags.IFD.Exif)
    for time_tag, offset_tag in _TIME_TAGS:
        # DateTime belongs to IFD0 but some writers put every tag in the Exif IFD, and back.
        value = sub.get(time_tag, exif.get(time_tag))
        moment = _parse_datetime(value)
        if moment is not None:
            zone = _parse_offset(sub.get(offset_tag, exif.get(offset_tag))) or default_tz
            return moment.replace(tzinfo=zone)
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.rstrip("\x00 ") if isinstance(value, str) else None


def _parse_datetime(value: object) -> datetime | None:
    """An EXIF "YYYY:MM:DD HH:MM:SS", naive; None for the blanks and zeros cameras write."""
    text = _text(value)
    match = _DATETIME.match(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _parse_offset(value: object) -> timezone | None:
    """An EXIF offset such as "+08:00" as a fixed zone; None when absent or malformed."""
    text = _text(value)
    match = _OFFSET.match(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    if hours > 14 or minutes >= 60:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)


def _position(gps: Mapping[int, Any]) -> tuple[float | None, float | None]:
    latitude = _coordinate(
        gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90
    )
    longitude = _coordinate(
        gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180
    )
    if latitude is None or longitude is None:
        return None, None
    return latitude, longitude


def _coordinate(
    value: object, ref: object, positive: str, negative: str, limit: float
) -> float | None:
    """Degrees, minutes, seconds and a hemisphere letter as signed decimal degrees.

    None for anything malformed: a missing or unknown hemisphere, a zero denominator (NaN),
    negative parts, minutes or seconds of 60 or more, or a result beyond ``limit``.
    """
    hemisphere = (_text(ref) or "").strip().upper()
    if hemisphere not in (positive, negative):
        return None
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers: list[float] = []
    for part in parts:
        try:
            number = float(part)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None
        if not math.isfinite(number) or number < 0:
            return None
        numbers.append(number)
    if any(number >= 60 for number in numbers[1:]):
        return None
    degrees = sum(number / 60**index for index, number in enumerate(numbers))
    if degrees > limit:
        return None
    return -degrees if hemisphere == negative else degrees
