"""Deterministic documents for the parser and chunker tests and the ingestion benchmarks.

Every generator is seeded: the same arguments write the same bytes, so figures and expected
values do not drift between runs. Text is English-like prose from a fixed vocabulary;
:func:`page_marker` is a word found only on one PDF page (tests locate pages by it).
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = (
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from",
    "this", "are", "be", "it", "an", "which", "system", "data", "model", "query", "result", "customer",
    "invoice", "payment", "service", "request", "latency", "document", "retrieval", "index", "vector",
    "search", "cluster", "region", "storage", "network", "policy", "account", "tenant", "budget", "forecast",
    "quarter", "revenue", "growth", "market", "product", "release", "engineer", "incident", "review",
    "metric", "threshold", "alert", "deploy", "rollback", "cache", "memory", "river", "mountain", "garden",
    "history", "music", "science", "language", "museum", "harbour", "winter",
)
SEED = 20240601


def sentence(rng: random.Random, words: tuple[int, int] = (8, 20)) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random, sentences: tuple[int, int] = (3, 7)) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def page_marker(page: int) -> str:
    """A word that appears on PDF page ``page`` (1-based) and nowhere else."""
    return f"pagemarker{page:04d}"


# --- PDF -------------------------------------------------------------------------------


def make_pdf(path: Path, pages: int, words_per_page: int = 450, *, seed: int = SEED,
             password: str | None = None) -> Path:
    """A PDF of ``pages`` A4 pages: each a title line ("Section N"), then paragraphs of
    about ``words_per_page`` words in all, the first one starting with :func:`page_marker`.
    ``password`` encrypts it with that user password (RC4, which PDFium opens)."""
    from fpdf import FPDF

    rng = random.Random(seed)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(20, 20, 20)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=14)
        pdf.cell(text=f"Section {number}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("Helvetica", size=10)
        words = 0
        first = True
        while words < words_per_page and pdf.get_y() < 250:
            text = paragraph(rng, (2, 5))
            if first:
                text = f"{page_marker(number)} {text}"
                first = False
            words += len(text.split())
            pdf.multi_cell(0, 4.5, text=text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    if password is not None:
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


# --- DOCX ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


@dataclass(frozen=True)
class Table:
    rows: Sequence[Sequence[str]]


DocxItem = str | Heading | Table

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/word/styles.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>
<Override PartName="/docProps/app.xml"
 ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>
</Types>"""
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1"
 Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
 Target="word/document.xml"/>
<Relationship Id="rId2"
 Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties"
 Target="docProps/app.xml"/>
</Relationships>"""
_DOCUMENT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"
 Target="styles.xml"/>
</Relationships>"""
# Style ids as a localised Word writes them ("berschrift1"): the parser must go by name.
_STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="{_W_NS}">
<w:style w:type="paragraph" w:default="1" w:styleId="Standard"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/>
<w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/>
<w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="Quote"><w:name w:val="Quote"/></w:style>
</w:styles>"""


def _run(text: str) -> str:
    parts = []
    for index, line in enumerate(text.split("\n")):
        if index:
            parts.append("<w:br/>")
        parts.append(f'<w:t xml:space="preserve">{escape(line)}</w:t>')
    return f"<w:r>{''.join(parts)}</w:r>"


def _paragraph_xml(text: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    # Split into two runs, as Word does at formatting changes: the parser must join them.
    middle = len(text) // 2
    return f"<w:p>{props}{_run(text[:middle])}{_run(text[middle:])}</w:p>"


def _items_xml(items: Iterable[DocxItem]) -> Iterator[str]:
    for item in items:
        if isinstance(item, Heading):
            yield _paragraph_xml(item.text, f"berschrift{min(item.level, 2)}")
        elif isinstance(item, Table):
            rows = "".join(
                "<w:tr>" + "".join(f"<w:tc>{_paragraph_xml(cell)}</w:tc>" for cell in row) + "</w:tr>"
                for row in item.rows)
            yield f"<w:tbl>{rows}</w:tbl>"
        else:
            yield _paragraph_xml(item)


def generated_docx_items(paragraphs: int, *, headings: bool = True, seed: int = SEED) -> Iterator[DocxItem]:
    """``paragraphs`` paragraphs of prose, with a heading before every tenth if ``headings``."""
    rng = random.Random(seed)
    for index in range(paragraphs):
        if headings and index % 10 == 0:
            yield Heading(f"Chapter {index // 10 + 1}")
        yield paragraph(rng)


def make_docx(path: Path, paragraphs: Sequence[DocxItem] | int, *, headings: bool = True,
              seed: int = SEED, pages: int | None = None) -> Path:
    """A minimal valid .docx (no python-docx): ``paragraphs`` is either the items in order
    (strings, :class:`Heading`, :class:`Table`) or a number of generated paragraphs. Each
    paragraph is written as two runs. ``pages`` is stored in docProps/app.xml as Word does."""
    items: Iterable[DocxItem] = (generated_docx_items(paragraphs, headings=headings, seed=seed)
                                 if isinstance(paragraphs, int) else paragraphs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/_rels/document.xml.rels", _DOCUMENT_RELS)
        archive.writestr("word/styles.xml", _STYLES)
        pages_xml = f"<Pages>{pages}</Pages>" if pages is not None else ""
        archive.writestr("docProps/app.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                         '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
                         f'extended-properties">{pages_xml}</Properties>')
        with archive.open("word/document.xml", "w") as handle:
            handle.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                         f'<w:document xmlns:w="{_W_NS}"><w:body>'.encode())
            for xml in _items_xml(items):
                handle.write(xml.encode())
            handle.write(b'<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>')
    return path


# --- Markdown, HTML, text -----------------------------------------------------------------


def _markdown_section(rng: random.Random, number: int) -> str:
    """One section using the markup the parser must see through."""
    parts = [f"## Section {number}\n", paragraph(rng) + "\n"]
    kind = number % 5
    if kind == 0:
        parts.append("".join(f"- {sentence(rng, (4, 10))}\n" for _ in range(rng.randint(2, 5))))
    elif kind == 1:
        parts.append(f"See the [{rng.choice(WORDS)} guide](https://example.com/{number}) and "
                     f"![diagram of the {rng.choice(WORDS)}](img/{number}.png) for **details**.\n")
    elif kind == 2:
        parts.append(f"```python\ndef handler_{number}(event):\n    return {number}\n```\n")
    elif kind == 3:
        parts.append(f"| name | value |\n|------|------:|\n| {rng.choice(WORDS)} | {number} |\n")
    else:
        parts.append(f"<!-- reviewer note {number} -->\n> {sentence(rng)}\n")
    parts.append(paragraph(rng) + "\n")
    return "\n".join(parts) + "\n"


def make_markdown(path: Path, size_bytes: int, *, seed: int = SEED) -> Path:
    """Markdown of about ``size_bytes`` bytes (at least that many): a title, then numbered
    sections of prose with lists, links, images, code, tables, comments and quotes."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        title = "# Generated handbook\n\n"
        handle.write(title)
        written += len(title)
        number = 1
        while written < size_bytes:
            section = _markdown_section(rng, number)
            handle.write(section)
            written += len(section.encode())
            number += 1
    return path


def make_html(path: Path, sections: int, *, seed: int = SEED) -> Path:
    """An HTML page with a head (title, style, script) and ``sections`` sections: an h2,
    paragraphs with inline markup, and every third a table."""
    rng = random.Random(seed)
    out = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Generated page</title>",
           "<style>p { color: red; }</style><script>var hidden = 'do not index';</script></head><body>",
           "<h1>Generated page</h1>"]
    for number in range(1, sections + 1):
        out.append(f"<section><h2>Section {number}</h2>")
        out.append(f"<p>{paragraph(rng)} <b>{rng.choice(WORDS)}</b> &amp; <a href='#x'>{rng.choice(WORDS)}</a></p>")
        if number % 3 == 0:
            out.append(f"<table><tr><th>name</th><th>value</th></tr><tr><td>{rng.choice(WORDS)}</td>"
                       f"<td>{number}</td></tr></table>")
        out.append("</section>")
    out.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def make_text(path: Path, size_bytes: int, *, paragraphs: bool = True, seed: int = SEED) -> Path:
    """Plain text of about ``size_bytes`` bytes: paragraphs separated by blank lines, or (with
    ``paragraphs=False``) one single line with no line break at all."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    separator = "\n\n" if paragraphs else " "
    with path.open("w", encoding="utf-8") as handle:
        while written < size_bytes:
            text = paragraph(rng) + separator
            handle.write(text)
            written += len(text)
    return path
