"""Every number in the book's prose is computed (glued from a cell) or cited, never typed.

The check reads each chapter's markdown cells and the book's pages, removes what may hold numbers
(glued values, cross-references, inline code and math, links, labels), names that contain digits
(``PBMC 10k``, ``ESM2``, ``Fig. 2a``, ``Table S6``, ``S.I.2``, years), sentences that cite their
source with ``{cite}``, and the paper's own definitions (UMI90's "90 %", a 2σ band); any number
left was typed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).parents[1]
PAGES = sorted((ROOT / "notebooks").glob("*.md")) + sorted((ROOT / "book").glob("*.md"))

_STRIP = [
    r"\{[a-z:]+\}`[^`]*`",  # {glue:text}`…`, {cite}`…`, {numref}`…`, {ref}`…`
    r"`[^`]*`",  # inline code
    r"\$\$.*?\$\$", r"\$[^$\n]*\$",  # math
    r"\]\([^)]*\)", r"https?://\S+",  # link targets
    r"^\([^)\n]*\)=$",  # labels
]
_NAMES = [
    r"\b(Fig(ure)?s?\.?|Tables?|Eq(uation)?s?\.?|Box|Supplementary|Section|Chapter)"
    r"(\s+(Fig\.?|Table))?\s+[A-Z]?\d+[a-z]?(\s*[–,-]\s*[A-Z]?\d+[a-z]?)*",
    r"\bS\.[IVX]+(\.\d+)*",  # Supplementary sections
    r"\b(19|20)\d\d[a-z]?\b",  # years of references
    r"\b2σ\b", r"\b90 ?%",  # a 2σ band; UMI90's definition
    r"\bresidues? \d+([–-]\d+)?", r"\b20 amino acids",  # positions in a protein; the alphabet
    r"\bSARS-CoV-2\b", r"\b(one|1) (substitution )?in 1,000\b",  # a name; the paper's claim
]
_NUMBER = re.compile(r"(?<![\w.])[-+±]?\d[\d,]*(\.\d+)?\s?%?(?![\w])")


def typed_numbers(text: str) -> list[str]:
    """Numbers typed into a piece of markdown prose, with some context each."""
    text = re.sub(r"\{cite(:[a-z]+)?\}`[^`]*`", "{cite}", text)  # a sentence citing its source
    for pattern in _STRIP:
        text = re.sub(pattern, " ", text, flags=re.S | re.M)
    for pattern in _NAMES:
        text = re.sub(pattern, " ", text)
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n", text):
        if "{cite}" not in sentence:
            found += [sentence.strip()[:80] for _ in _NUMBER.finditer(sentence)]
    return found


def _prose(path: Path) -> str:
    if path.parent.name == "notebooks":
        return "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")
    return path.read_text()


def test_the_check_catches_a_typed_number_and_spares_glued_ones():
    assert typed_numbers("The fit has 117 pairs.") == ["The fit has 117 pairs."]
    assert typed_numbers("The fit has {glue:text}`n_pairs` pairs (Fig. 2a, Table S6).") == []
    assert typed_numbers("The paper reports 0.913 {cite}`x`. Next.") == []


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_no_number_is_typed_into_the_prose(page):
    assert typed_numbers(_prose(page)) == [], page.name


def test_every_citation_is_in_the_bibliography():
    from pybtex.database import parse_file

    keys = set(parse_file(ROOT / "book" / "references.bib").entries)
    cited = set()
    for page in PAGES:
        for roles in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]*)`", page.read_text()):
            cited |= {k.strip() for k in roles.split(",")}
    assert cited and cited <= keys, sorted(cited - keys)
