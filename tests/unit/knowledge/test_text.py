"""Text normalisation and the search strings of PostgreSQL full-text search (CJK bigrams)."""

from __future__ import annotations

import pytest

from shared.knowledge.text import MAX_QUERY_TERMS, MAX_WORD_CHARS, normalize, query_terms, sanitize, search_text


class TestNormalize:
    def test_collapses_spaces_keeps_paragraphs(self) -> None:
        assert normalize("  one\t\t two  \r\n\r\n\r\n\n three \n four  ") == "one two\n\nthree\nfour"

    def test_removes_controls_and_invisible_characters(self) -> None:
        text = "a\x00b\x07c\u200bd\ufeffe\u00adf\x7fg\ud800h"
        assert normalize(text) == "abcdefgh"

    def test_unicode_spaces_and_separators(self) -> None:
        assert normalize("a\u00a0\u3000b\u2028c\x0cd\x1fe") == "a b\nc\nd e"

    def test_whitespace_only(self) -> None:
        assert normalize(" \n\t\u3000 ") == ""

    def test_sanitize_removes_only_what_postgres_cannot_store(self) -> None:
        assert sanitize("a\x00 \t b\ud83d\n\x07") == "a \t b\n\x07"


class TestSearchText:
    def test_chinese_bigrams(self) -> None:
        assert search_text("知识库检索") == "知识 识库 库检 检索"

    def test_single_character_run(self) -> None:
        assert search_text("猫") == "猫"
        assert search_text("A 猫 b") == "a 猫 b"

    def test_mixed_latin_and_cjk_punctuation_stripped(self) -> None:
        assert search_text("Stratus 知识库, v2.0! (beta)") == "stratus 知识 识库 v2 0 beta"

    def test_cjk_punctuation_splits_runs(self) -> None:
        assert search_text("你好，世界。") == "你好 世界"  # noqa: RUF001

    def test_japanese_kana_and_kanji(self) -> None:
        assert search_text("東京タワー") == "東京 京タ タワ ワー"
        assert search_text("ひらがな") == "ひら らが がな"

    def test_korean(self) -> None:
        assert search_text("한국어 검색") == "한국 국어 검색"

    def test_lowercase_and_width_folding(self) -> None:
        # Full-width Latin and half-width Katakana fold (NFKC) to their ordinary forms.
        assert search_text("ＡＢＣ１２３ Hello") == "abc123 hello"  # noqa: RUF001
        assert search_text("ｶﾀｶﾅ") == search_text("カタカナ") == "カタ タカ カナ"

    def test_words_of_other_scripts_keep_their_marks(self) -> None:
        assert search_text("Café naïve हिन्दी") == "café naïve हिन्दी"

    def test_underscores_and_symbols_split_words(self) -> None:
        assert search_text("snake_case a+b=c €5") == "snake case a b c 5"

    def test_overlong_words_dropped(self) -> None:
        assert search_text("x" * (MAX_WORD_CHARS + 1) + " keep") == "keep"
        assert search_text("y" * MAX_WORD_CHARS) == "y" * MAX_WORD_CHARS

    def test_empty(self) -> None:
        assert search_text("") == ""
        assert search_text(" ,.!? 。") == ""

    @pytest.mark.parametrize(("document", "query"), [
        ("企业知识库检索系统", "知识库"),
        ("東京タワーに行きました", "タワー"),
        ("한국어 텍스트 검색 엔진", "검색"),
        ("The Quick brown FOX", "quick fox"),
    ])
    def test_a_query_meets_the_document_it_occurs_in(self, document: str, query: str) -> None:
        indexed = set(search_text(document).split())
        assert set(query_terms(query)) <= indexed


class TestQueryTerms:
    def test_deduplicated_in_order(self) -> None:
        assert query_terms("the cat and THE dog 猫猫 猫猫") == ["the", "cat", "and", "dog", "猫猫"]

    def test_bounded(self) -> None:
        text = " ".join(f"w{i}" for i in range(200))
        terms = query_terms(text)
        assert len(terms) == MAX_QUERY_TERMS
        assert terms[0] == "w0"
        assert query_terms(text, limit=3) == ["w0", "w1", "w2"]

    def test_terms_are_only_letters_digits_and_marks(self) -> None:
        for term in query_terms("a'b \"c\" d&e f|g !h (i) j:k 知识:库 o'reilly"):
            assert all(ch.isalnum() for ch in term), term
