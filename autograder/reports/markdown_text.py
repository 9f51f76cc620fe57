"""Text for Markdown pages: what a submission wrote (messages, ids, file names) stays literal text.

A feedback page shows messages that student code can shape; in Markdown they must never become a
link, an image, raw HTML, a table or a heading. Manifest text is the instructor's and keeps its
Markdown.
"""

from __future__ import annotations

import html
import re

# Backslash-escaped outside code spans: what can start emphasis, code, links and images, table
# cells, strikethrough and headings; HTML and entities (``& < >``) become entities. ``_`` inside
# a word starts nothing and stays. A bare URL stays a visible URL.
_MD_SPECIAL = re.compile(r"[\\`*\[\]|~#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LIST_START = re.compile(r"([-+]|\d+[.)])(?=\s|$)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), html.escape(text, quote=False))


def _no_list_start(text: str) -> str:
    """``- x``, ``+ x`` or ``1. x`` at the start of a line would make a list."""
    m = _LIST_START.match(text)
    return text if m is None else text[:m.end() - 1] + "\\" + text[m.end() - 1:]


def md_text(text) -> str:
    """Untrusted text (a message, an id, a file name) as literal Markdown text on one line."""
    return _no_list_start(_md_escape(" ".join(str(text).split())))


def md_message(text) -> str:
    """Like :func:`md_text`, but well-formed single-backtick code spans (`name`) are kept: in a
    code span nothing is Markdown or HTML."""
    parts = _CODE_SPAN.split(" ".join(str(text).split()))  # even: text, odd: the inside of a code span
    return _no_list_start("".join(_md_escape(p) if i % 2 == 0 else f"`{p}`" for i, p in enumerate(parts)))


def md_code(name) -> str:
    """A name in a code span, or escaped text when it holds a backtick."""
    name = " ".join(str(name).split())
    return f"`{name}`" if "`" not in name and name.strip() else md_text(name)


def md_trusted(text) -> str:
    """Manifest text (titles, hints: the instructor's Markdown): only HTML is escaped."""
    return html.escape(" ".join(str(text).split()), quote=False)
