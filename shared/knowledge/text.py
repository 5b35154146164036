"""Text clean-up for chunking and the search strings of PostgreSQL full-text search.

PostgreSQL's parsers do not segment Chinese or Japanese (no spaces between words) and the
``simple`` configuration would index a whole CJK sentence as one lexeme. So the text given to
``to_tsvector('simple', …)`` and the terms of a query both go through :func:`search_text`:
CJK runs become overlapping character bigrams (the CJK analyzer of Lucene/OpenSearch does the
same), everything else lower-cased words, punctuation dropped. Index and query must use the
same function, or they will not meet (docs/adr/0024-parsing-and-chunking.md).
"""

from __future__ import annotations

import re
import unicodedata

# --- normalize -------------------------------------------------------------------------

_NEWLINES = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
# Control characters (PostgreSQL text cannot even hold NUL), lone surrogates (not encodable
# as UTF-8), and invisible characters that only break words apart: soft hyphen, zero-width
# space, word joiner, BOM, non-characters. \t and \x1c-\x1f are whitespace and become spaces.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u200b\u2060\ufeff\ufffe\uffff\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")
_SPACED_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def normalize(text: str) -> str:
    """Control and invisible characters removed, runs of spaces (any Unicode space, tabs)
    collapsed to one, line breaks unified to ``\\n`` and at most one blank line kept, so
    paragraphs survive; stripped."""
    text = _NEWLINES.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACED_NEWLINE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def sanitize(text: str) -> str:
    """Only what PostgreSQL cannot store removed (NUL, lone surrogates): for text kept as is."""
    return _UNSTORABLE.sub("", text)


# --- search strings ----------------------------------------------------------------------

# Han (CJK unified ideographs and extensions, compatibility ideographs, 々〆〇), Hiragana,
# Katakana (with phonetic extensions and half-width forms, though NFKC folds the latter),
# Hangul (syllables and jamo).
CJK_RANGES = (
    "\u1100-\u11ff"          # Hangul Jamo
    "\u3005-\u3007"          # iteration mark, closing mark, ideographic zero
    "\u3040-\u309f"          # Hiragana
    "\u30a0-\u30ff"          # Katakana
    "\u3130-\u318f"          # Hangul compatibility jamo
    "\u31f0-\u31ff"          # Katakana phonetic extensions
    "\u3400-\u4dbf"          # CJK extension A
    "\u4e00-\u9fff"          # CJK unified ideographs
    "\ua960-\ua97f"          # Hangul jamo extended A
    "\uac00-\ud7af"          # Hangul syllables
    "\ud7b0-\ud7ff"          # Hangul jamo extended B
    "\uf900-\ufaff"          # CJK compatibility ideographs
    "\uff66-\uff9f"          # half-width Katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G, compatibility supplement
)
_CJK_RUN = re.compile(f"([{CJK_RANGES}]+)")
# Combining marks (and ZWNJ/ZWJ) are not \w in Python, but they are part of words in many
# scripts (Devanagari vowel signs, Hebrew and Arabic points, Thai vowels, decomposed accents).
_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
          "\u0900-\u0963\u0966-\u0dff\u0e00-\u0eff\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u200d\u20d0-\u20ff"
          "\ufe20-\ufe2f")
_WORD = re.compile(f"[^\\W_][\\w{_MARKS}]*")
# A longer "word" is a hash, a base64 blob or a URL run together: noise for search, and
# PostgreSQL refuses lexemes above 2 KB anyway.
MAX_WORD_CHARS = 100
MAX_QUERY_TERMS = 64


def _terms(text: str) -> list[str]:
    terms: list[str] = []
    # NFKC folds full-width Latin and digits, half-width Katakana and compatibility forms
    # (①, ﬁ) to their ordinary characters, so either spelling finds the other.
    text = unicodedata.normalize("NFKC", text).lower()
    for index, part in enumerate(_CJK_RUN.split(text)):
        if not part:
            continue
        if index % 2:  # a CJK run: split() puts captured runs at odd indices
            if len(part) == 1:
                terms.append(part)
            else:
                terms.extend(part[i:i + 2] for i in range(len(part) - 1))
        else:
            for word in _WORD.findall(part):
                word = word.replace("_", " ").strip()
                if not word:
                    continue
                for piece in word.split():
                    if len(piece) <= MAX_WORD_CHARS:
                        terms.append(piece)
    return terms


def search_text(text: str) -> str:
    """The string to index with ``to_tsvector('simple', …)`` and to build queries from:
    CJK runs as overlapping character bigrams (a single character alone), other text as
    lower-cased words, punctuation and symbols dropped, terms separated by single spaces.

    >>> search_text("Stratus 知识库检索, v2!")
    'stratus 知识 识库 库检 检索 v2'
    """
    return " ".join(_terms(text))


def query_terms(text: str, limit: int = MAX_QUERY_TERMS) -> list[str]:
    """The distinct terms of :func:`search_text` in order of first appearance, at most
    ``limit``: the lexemes of an OR tsquery. Terms hold only letters, digits and combining
    marks, but pass them as values (``to_tsquery('simple', quote_literal(t))`` or a
    ``plainto_tsquery`` per term), never spliced into SQL or tsquery syntax."""
    seen: dict[str, None] = {}
    for term in _terms(text):
        if term not in seen:
            seen[term] = None
            if len(seen) >= limit:
                break
    return list(seen)


# PostgreSQL's english.stop (the Snowball list): the words its ``english_stem`` dictionary
# reduces to nothing, which the full-text search function leaves out of a query that has
# other terms (migration 0007). The keyword score leaves out the same words
# (tests/integration/test_knowledge.py checks the two lists agree).
_ENGLISH_STOP = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
herself it its itself they them their theirs themselves what which who whom this that these those am is
are was were be been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below to from up
down in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don should
now"""
STOP_WORDS = frozenset(_ENGLISH_STOP.split())


def keyword_terms(text: str) -> list[str]:
    """The terms a keyword match is judged on: :func:`query_terms` without English function
    words, unless nothing else is left (a query of only such words keeps them), as the
    full-text search does."""
    terms = query_terms(text)
    meaningful = [t for t in terms if t not in STOP_WORDS]
    return meaningful or terms
