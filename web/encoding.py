"""Form bodies that are not UTF-8 text are refused before anything reads them.

Werkzeug decodes form fields leniently: a bad byte in a multipart field becomes U+FFFD and a
percent-escaped one (`%FF`) stays as those three characters, so a mangled review would be stored
as if someone had written it. Uploaded files are left to their reader (web/uploads.py).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import request
from werkzeug.sansio.multipart import Data, Epilogue, Field, MultipartDecoder, NeedData

from sentiment_core.errors import Invalid


def check_form_encoding() -> None:
    """A before-request hook: a 400 for a form whose fields are not UTF-8, on the pages
    (the only routes that read forms; others ignore a body they do not use)."""
    if request.blueprint != "pages":
        return
    if request.mimetype == "application/x-www-form-urlencoded":
        fields = [unquote_to_bytes(request.get_data(cache=True).replace(b"+", b" "))]
    elif request.mimetype == "multipart/form-data":
        boundary = request.mimetype_params.get("boundary", "")
        fields = multipart_fields(request.get_data(cache=True), boundary)
    else:
        return
    try:
        for field in fields:
            field.decode()
    except UnicodeDecodeError:
        raise Invalid("invalid_encoding", "The form was not sent as UTF-8 text.") from None


def multipart_fields(body: bytes, boundary: str) -> list[bytes]:
    """The value of each non-file part; none when the body is not multipart as declared
    (Werkzeug's own parser then reads it as an empty form)."""
    fields: list[bytes] = []
    in_field = False
    if not boundary:
        return fields
    try:
        decoder = MultipartDecoder(boundary.encode("ascii"))
        decoder.receive_data(body)
        decoder.receive_data(None)
        while not isinstance(event := decoder.next_event(), (Epilogue, NeedData)):
            if isinstance(event, Data):
                if in_field:
                    fields[-1] += event.data
            else:
                in_field = isinstance(event, Field)
                if in_field:
                    fields.append(b"")
    except ValueError:
        return []
    return fields
