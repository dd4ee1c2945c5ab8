"""When two names look the same: Unicode's confusable skeletons (UTS #39), for the chat's names.

"ada" and "аda" (a Cyrillic а), "ａｄａ" (fullwidth) or "𝐚𝐝𝐚" (mathematical bold) are
different strings that render alike, so a room that only compares strings lets anyone pose
as anyone. UTS #39 gives each string a *skeleton*: decomposed (NFD), each character replaced
by the representative of its class of look-alikes, decomposed again. Two names look alike
when their skeletons are equal::

    skeleton("аda") == skeleton("ada")      # True: the room numbers the second ("аda 2")
    invisible("ad\u034fa")                   # (2, "\u034f"): refused outright

The classes come from Unicode's confusables data as the ``confusable-homoglyphs`` package
ships it (MIT, pure Python, no dependencies, about 1 MB): for each character, the ones it can
be taken for. The representative of a class is its ASCII member if it has one, else its
smallest, so every member of a class, however the data links them, gets the same one.

Characters that render as nothing (Unicode's default-ignorable code points, and the Hangul
and Braille fillers that render as a blank) are not look-alikes but hidden ones: a name
with one is refused (:func:`invisible`).
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["invisible", "load", "skeleton"]

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside the format category (Cf,
# refused with the controls already), plus the fillers that show as a blank space: Hangul
# choseong and jungseong fillers, the Hangul filler, its halfwidth form, the blank Braille
# pattern. Ranges, inclusive.
_HIDDEN = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong filler
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0x2800, 0x2800),  # Braille pattern blank
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


def invisible(name: str) -> tuple[int, str] | None:
    """The position and character of the first character in ``name`` that renders as
    nothing (see the module), or None."""
    for at, c in enumerate(name):
        code = ord(c)
        if any(low <= code <= high for low, high in _HIDDEN):
            return at, c
    return None


@functools.cache
def _representatives() -> dict[str, str]:
    """Each confusable character's class representative (loaded on first use)."""
    from confusable_homoglyphs.confusables import confusables_data

    # Union-find over the data's links: a class is everything linked, however indirectly.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for char, homoglyphs in confusables_data.items():
        for homoglyph in homoglyphs:
            a, b = find(char), find(homoglyph["c"])
            if a != b:
                parent[a] = b
    classes: dict[str, list[str]] = {}
    for member in list(parent):
        classes.setdefault(find(member), []).append(member)
    chosen: dict[str, str] = {}
    for members in classes.values():
        best = min(members, key=lambda s: (not s.isascii(), len(s), s))
        chosen.update((m, best) for m in members if len(m) == 1)
    return chosen


def load() -> None:
    """Build the classes now (half a second): from a thread, before the first join needs them."""
    _representatives()


def skeleton(name: str) -> str:
    """``name``'s UTS #39 skeleton: equal for names that look alike.

    Compatibility forms (fullwidth, mathematical and circled letters) are folded first
    (NFKC): the confusables data lists only some of them.
    """
    representatives = _representatives()
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", name))
    mapped = "".join(representatives.get(c, c) for c in decomposed)
    return unicodedata.normalize("NFD", mapped)
