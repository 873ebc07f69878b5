"""A refusal's reason in the person's language: the core and `submissions` word them in English (for logs and
the REST API); the chat shows the catalogue's sentence for the ones a person meets, and the core's words, after a
translated lead, for the rest (an option's range, which names the option and what is allowed)."""

from __future__ import annotations

import re

from vidfarm_service.catalogue import say

_KNOWN = (  # (English pattern, catalogue key, its fields from the match)
    (r"the prompt is empty", "prompt_empty", ()),
    (r"the prompt is (\d+) characters; at most (\d+)", "prompt_long", ("chars", "limit")),
    (r"not an image|cannot identify image|unreadable", "not_image", ()),
    (r"strategy (\w+) cannot end on a given photo", "album_needs_keyframes", ("strategy",)),
    (r"used your (\d+) jobs for today", "quota_jobs", ("limit",)),
    (r"used (\d+) of your ([\d.]+) GPU minutes", "quota_minutes", ("used", "limit")),
)
_PATH = re.compile(r"(?:'|\")?/[^\s'\"]+(?:'|\")?")


def refusal_text(reason: str, lang: str) -> str:
    for pattern, key, names in _KNOWN:
        match = re.search(pattern, reason)
        if match:
            return say(lang, key, **dict(zip(names, match.groups(), strict=True)))
    return say(lang, "option_bad", detail=_PATH.sub("…", reason).rstrip("."))
