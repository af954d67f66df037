"""Run artifacts: which files a device may upload, and how they are served back.

An artifact comes from a phone, and a phone (or whoever holds its token) is not trusted with
the dashboard's origin: an HTML or SVG file served from it could run script with a signed-in
user's session. So:

* only screenshots (PNG, JPEG, WebP), screen recordings (MP4) and text (JSON, XML, plain) are
  taken, and the bytes must be what the declared type says (sniffed: an image's magic number,
  an MP4's `ftyp` box, text that is UTF-8);
* every answer carries `X-Content-Type-Options: nosniff` and
  `Content-Security-Policy: sandbox; default-src 'none'` (nothing in it runs or loads);
* images and videos are shown inline (a video answers byte ranges, so a player can seek); text
  is served as `text/plain` and as an attachment (a download).

The API and the dashboard serve artifacts through `artifact_response` alike.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from interpreter.safe_json import text_problem
from server.errors import FieldProblem, ValidationFailed

IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
VIDEO_TYPES = {"video/mp4": "MP4"}
# Declared text types, and the type each is stored as.
TEXT_TYPES = {
    "application/json": "application/json",
    "application/xml": "application/xml",
    "text/xml": "application/xml",
    "text/plain": "text/plain",
}
UNDECLARED = {"", "application/octet-stream"}
MAX_NAME_LENGTH = 200
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
}
_ALLOWED_WORDS = "PNG, JPEG or WebP screenshots, MP4 videos, or JSON, XML or plain text (UTF-8)"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def sniff_image(data: bytes) -> str | None:
    """The image type `data` starts like, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_video(data: bytes) -> str | None:
    """`video/mp4` when `data` starts with an ISO base media file's `ftyp` box, else None."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_name(name: str) -> str:
    """The artifact's name, or 422: 1–200 printable characters, no '/' or '\\'."""
    name = name.strip()
    problem = text_problem(name)
    if (
        not name
        or len(name) > MAX_NAME_LENGTH
        or "/" in name
        or "\\" in name
        or problem is not None
        or not name.isprintable()
        or name in (".", "..")
    ):
        raise ValidationFailed(
            [
                FieldProblem(
                    "/name",
                    f"an artifact needs a name of 1-{MAX_NAME_LENGTH} printable characters "
                    "without '/' or '\\'",
                    "send a name such as failure-3-check.png",
                )
            ]
        )
    return name


def stored_type(declared: str | None, data: bytes) -> str:
    """The content type an upload is stored as, or 422 when it is not allowed or not what it says."""
    kind = (declared or "").split(";", 1)[0].strip().lower()
    image = sniff_image(data)
    video = sniff_video(data)
    if kind in UNDECLARED:
        if image is not None:
            return image
        if video is not None:
            return video
        if _is_text(data):
            return "text/plain"
        raise _refused(f"the file's type is not given and its bytes are none of {_ALLOWED_WORDS}")
    if kind in IMAGE_TYPES:
        if image != kind:
            raise _refused(f"the file is declared {kind} but its bytes are not a {IMAGE_TYPES[kind]} image")
        return kind
    if kind in VIDEO_TYPES:
        if video != kind:
            raise _refused(f"the file is declared {kind} but its bytes are not an {VIDEO_TYPES[kind]} video")
        return kind
    if kind in TEXT_TYPES:
        if not _is_text(data):
            raise _refused(f"the file is declared {kind} but is not UTF-8 text (or holds a NUL)")
        return TEXT_TYPES[kind]
    raise _refused(f"artifacts of type {kind} are not taken")


def _refused(message: str) -> ValidationFailed:
    return ValidationFailed(
        [FieldProblem("/file", message, f"upload {_ALLOWED_WORDS}, with that content type")]
    )


def artifact_response(
    name: str, content_type: str, data: bytes | Iterator[bytes], range_header: str | None = None
) -> Response:
    """The bytes of an artifact with the headers that keep them inert (see the module docstring).

    `data` may be the chunks of a stored file: they are streamed, its first bytes sniffed. A video
    answers `Range: bytes=...` with 206 and that part (416 when it lies past the end)."""
    encoded = quote(name, safe="")
    if content_type in VIDEO_TYPES:
        whole = data if isinstance(data, bytes) else b"".join(data)
        if sniff_video(whole) == content_type:
            headers = {
                **SECURITY_HEADERS,
                "Content-Disposition": f"inline; filename*=UTF-8''{encoded}",
                "Accept-Ranges": "bytes",
            }
            return _ranged(whole, content_type, headers, range_header)
        data = whole
    chunks = iter([data]) if isinstance(data, bytes) else data
    head = b""
    for chunk in chunks:  # enough of the start to tell an image by its magic number
        head += chunk
        if len(head) >= 16:
            break
    if content_type in IMAGE_TYPES and sniff_image(head) == content_type:
        disposition, media_type = "inline", content_type
    else:
        # Text, and whatever an older server stored: a download, never a page of this origin.
        disposition, media_type = "attachment", "text/plain; charset=utf-8"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f"{disposition}; filename*=UTF-8''{encoded}"}
    if isinstance(data, bytes):
        return Response(data, media_type=media_type, headers=headers)
    return StreamingResponse(itertools.chain([head], chunks), media_type=media_type, headers=headers)


def _ranged(data: bytes, media_type: str, headers: dict[str, str], range_header: str | None) -> Response:
    """The whole body, or the one byte range asked for (several ranges: the whole body, as allowed)."""
    match = _RANGE.match((range_header or "").strip())
    if match is None or match.groups() == ("", ""):
        return Response(data, media_type=media_type, headers=headers)
    first, last = match.groups()
    size = len(data)
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)
