"""HTML: block elements as blocks, headings flagged, scripts and styles skipped, declared charsets."""

from __future__ import annotations

from pathlib import Path

from shared.knowledge.types import Block
from tests.support.documents import make_html
from tests.unit.knowledge.parsing.support import blocks_of, write

HTML = """<!DOCTYPE html>
<html><head><title>Not content</title><style>p { color: red }</style>
<script>var hidden = "<p>not text</p>";</script></head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Main   <em>title</em></h1>
<p>First   paragraph with
<b>bold</b> &amp; entities &eacute; &#x4e2d;.<br>Second line.</p>
<div>Block <span>inline</span> <img src="a.png" alt="a chart"> end</div>
<ul><li>one</li><li>two</li></ul>
<table><tr><th>name</th><th>value</th></tr><tr><td>a</td><td>1</td></tr></table>
<pre>  keep
    indentation</pre>
<noscript>enable js</noscript>
<h2>Sub</h2>trailing text
</body></html>"""


class TestHtml:
    def testblocks_of(self, tmp_path: Path) -> None:
        assert blocks_of(write(tmp_path, "a.html", HTML), "html") == [
            Block("Home"),
            Block("Main title", heading=True),
            Block("First paragraph with bold & entities é 中.\nSecond line."),
            Block("Block inline a chart end"),
            Block("one"),
            Block("two"),
            Block("name | value"),
            Block("a | 1"),
            Block("  keep\n    indentation"),
            Block("Sub", heading=True),
            Block("trailing text"),
        ]

    def test_declared_charset(self, tmp_path: Path) -> None:
        page = '<html><head><meta charset="windows-1252"></head><body><p>Café crème</p></body></html>'
        assert blocks_of(write(tmp_path, "a.html", page.encode("cp1252")), "html") == [Block("Café crème")]

    def test_generated_page(self, tmp_path: Path) -> None:
        blocks = blocks_of(make_html(tmp_path / "a.html", 30), "html")
        assert [b.text for b in blocks if b.heading][:2] == ["Generated page", "Section 1"]
        text = " ".join(b.text for b in blocks)
        assert "do not index" not in text and "color" not in text
        assert "&amp;" not in text and " & " in text
