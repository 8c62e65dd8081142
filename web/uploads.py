"""Reviews from the page's "many at once" form: pasted lines, or a CSV or JSON-lines file."""

from __future__ import annotations

import csv
import io
import json
import re

from sentiment_core.errors import Invalid

TEXT_COLUMNS = ("text", "review")  # CSV columns read as the review, in this order


def lines(text: str) -> list[str]:
    """`text` cut at line breaks only: str.splitlines also cuts at U+2028, form feeds and other
    separators that a review or a JSON string may hold."""
    return re.split(r"\r\n|\r|\n", text)


def texts_from_lines(pasted: str) -> list[str]:
    return [line for line in lines(pasted) if line.strip()]


def texts_from_file(filename: str, data: bytes) -> list[str]:
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("invalid_file", f"{filename} is not UTF-8 text") from None
    name = filename.lower()
    if name.endswith(".csv"):
        return texts_from_csv(filename, content)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return texts_from_jsonl(filename, content)
    raise Invalid("invalid_file", f"{filename}: upload a .csv or a .jsonl file")


def texts_from_csv(filename: str, content: str) -> list[str]:
    try:
        reader = csv.DictReader(io.StringIO(content))
        column = next((c for c in TEXT_COLUMNS if c in (reader.fieldnames or [])), None)
        if column is None:
            raise Invalid("invalid_file", f"{filename} needs a 'text' or 'review' column")
        return [row[column] or "" for row in reader]
    except csv.Error as exc:
        raise Invalid("invalid_file", f"{filename}: {exc}") from None


def texts_from_jsonl(filename: str, content: str) -> list[str]:
    texts = []
    for number, line in enumerate(lines(content), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise Invalid("invalid_file", f"{filename} line {number} is not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            message = f'{filename} line {number} must be an object with a "text" string'
            raise Invalid("invalid_file", message)
        texts.append(row["text"])
    return texts
