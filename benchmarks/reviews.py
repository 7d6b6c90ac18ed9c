"""The benchmark's inputs: deterministic, real-looking product reviews of fixed lengths.

Every system gets the same texts in the same order. Each length has a few variants (half
negative, half positive, sentences in different orders) so batches hold slightly different
token counts, as real traffic does; all variants of a length are within a word of it.
"""

from __future__ import annotations

import random

# 667 characters, the length the seed project benchmarked its Flask service with (1.69 req/s).
SEED_REVIEW = (
    "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads. I bought it "
    "because it states in the name that it clears pores. Not what I expected for this price. It is a "
    "nice texture though, and it smells lovely, so I kept using it for about three weeks hoping that "
    "the results would show up eventually. They did not. My pores look exactly the same as before and "
    "my skin feels a little tight after every use, which I never had with my old cleanser. The bottle "
    "is pretty and the pump works well, but for the money I would rather buy two bottles of the "
    "drugstore brand I used before. Would not repurchase, and I would not recommend it to my friends."
)[:667]

SEED_LENGTH = len(SEED_REVIEW)
LENGTHS = (100, 300, SEED_LENGTH, 1500)
VARIANTS = 8

NEGATIVE = (
    "I'm disappointed with this one.",
    "The formula pills under makeup after an hour, no matter how little I use.",
    "It broke me out along the jawline within the first week.",
    "The scent is overpowering and lingers on my pillow all night.",
    "For this price I expected far better results than a slightly softer feel.",
    "The pump stopped working halfway through the bottle, so I had to cut it open.",
    "My skin felt tight and itchy every single morning after using it.",
    "The colour looked nothing like the photos and turned orange on my skin.",
    "It dried out so fast that the second half of the tube was useless.",
    "Customer service told me to keep using it and wait, which did not help.",
    "The packaging is pretty, but that is the only nice thing I can say.",
    "It separated in the jar and the texture became greasy and uneven.",
    "I gave it a full month, as the brand suggests, and saw no change at all.",
    "The shade range is tiny and none of them matched my undertone.",
    "It stung my eyes even though the label says it is gentle enough for them.",
    "Honestly the drugstore version I used before worked better for half the money.",
    "The lid cracked in my bag on the second day and it leaked everywhere.",
    "My pores look exactly the same as before, maybe even more visible.",
    "The tiny sample felt fine, but the full size clearly has a different formula.",
    "I returned it and will not buy from this line again.",
)
POSITIVE = (
    "I love this more than I expected to.",
    "It goes on smoothly, blends in seconds and lasts all day without touch-ups.",
    "My skin has never looked this even, and friends keep asking what changed.",
    "The scent is light and fresh and fades after a few minutes.",
    "A little goes a long way, so the jar has lasted me almost three months.",
    "It calmed the redness on my cheeks within the first week of use.",
    "The shade matches my skin perfectly, which almost never happens to me.",
    "It layers well under sunscreen and makeup without pilling at all.",
    "The pump gives exactly the right amount and has never clogged.",
    "My dry patches were gone after a few days, even in the middle of winter.",
    "It feels luxurious but is not greasy, and it sinks in quickly.",
    "I have sensitive skin and had no reaction whatsoever, not even a tingle.",
    "The packaging is sturdy enough to travel with, and it never leaked.",
    "It made my morning routine shorter because I can skip primer now.",
    "The texture is like a soft whipped cream that melts into the skin.",
    "My pores look smaller and my makeup sits much better on top of it.",
    "Worth every penny, and the bottle looks lovely on my shelf too.",
    "I bought a second one as a gift for my sister, and she loves it as well.",
    "Customer service answered my question about ingredients within an hour.",
    "I will definitely repurchase, it has earned a permanent spot in my routine.",
)


def _review(length: int, variant: int) -> str:
    """Sentences of one tone in a variant-specific order, cut at the last word that fits."""
    pool = list(NEGATIVE if variant % 2 == 0 else POSITIVE)
    random.Random(length * 100 + variant).shuffle(pool)
    text = ""
    for sentence in pool * (1 + length // sum(map(len, pool))):
        if len(text) >= length:
            break
        text = f"{text} {sentence}".strip()
    if len(text) > length:
        text = text[: text.rfind(" ", 0, length + 1)].rstrip(" ,")
    return text


def reviews(length: int, variants: int = VARIANTS) -> list[str]:
    """`variants` reviews of about `length` characters; at the seed's length the first is the
    seed's own review."""
    texts = [_review(length, v) for v in range(variants)]
    if length == SEED_LENGTH:
        texts[0] = SEED_REVIEW
    return texts
