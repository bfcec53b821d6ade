"""Text for the stories: what markup, addresses and stemming leave in the words compared."""

from __future__ import annotations

from bot.text.clean import clean_markdown
from bot.text.tokenize import term_slots, terms


def test_an_image_whose_address_the_crawler_cut_off_leaves_no_words() -> None:
    text, links = clean_markdown("Intro line.\n\n![](https://i0.wp.com/se...\n\n[Source](https://example.org/a)")
    assert "i0" not in terms(text) and "wp" not in terms(text)
    assert text.startswith("Intro line.") and text.endswith("Source")
    assert links == ["https://example.org/a"]


def test_a_whole_image_goes_and_a_link_keeps_its_words() -> None:
    text, links = clean_markdown('See ![logo](https://x.example/l.png "Logo") the [report](https://x.example/r).')
    assert text == "See  the report."
    assert links == ["https://x.example/r"]


def test_term_slots_mark_where_a_stop_word_stood() -> None:
    slots = term_slots("Storm-2372 used the device code phishing technique")
    assert slots[0] == "storm-2372" and slots[1] is None and slots[2] is None
    assert [t for t in slots if t is not None] == terms("Storm-2372 used the device code phishing technique")


def test_percent_escapes_of_a_cut_address_make_no_words() -> None:
    words = terms("[Sign up](/signup?ref_page=%2F%3Cuser%3E&source_repo=charmbracelet%2Fglow) 50% of users")
    assert "charmbracelet" in words and "glow" in words
    assert not any(w.startswith(("2f", "3c", "3e")) for w in words)
    whole = terms("see https://github.com/login?return_to=https%3A%2F%2Fgithub.com%2Fcharmbracelet%2Fglow")
    assert "charmbracelet" in whole and "glow" in whole and not any(w.startswith("2f") for w in whole)


def test_a_stem_is_as_common_as_its_words_in_the_background_prior() -> None:
    from bot.text.frequency import prior_share

    for word in ("device", "february", "newspaper", "police"):
        stem = terms(word)[0]
        assert stem != word, "the word was expected to be stemmed"
        assert prior_share(stem) == prior_share(word) > 0.005, f"{stem} looked as rare as a name"
    assert prior_share("sonicwall") < 0.001, "a name the lists do not hold is rare"


def test_a_signed_advisory_keeps_its_text_and_loses_its_signature() -> None:
    signed = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nExampleOS 4.2.1 fixes CVE-2031-0001.\n"
        "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEEqX+5d1TXaIvOfAmEqX+5d1TXaIv\nOfAmEqX=\n"
        "-----END PGP SIGNATURE-----\nList archive footer"
    )
    text, _ = clean_markdown(signed)
    words = terms(text)
    assert "cve-2031-0001" in words and "footer" in words
    assert not any("iqiz" in w or "ofamequ" in w for w in words)
    # A block the crawler cut before its end runs to the end; a lone marker is left alone.
    assert clean_markdown("Text\n-----BEGIN PGP SIGNATURE-----\niQIzBAEB")[0] == "Text"
    assert "PGP" in clean_markdown("-----BEGIN PGP rest of a line")[0]
