"""Convert a conversation in the "conversationItems" shape of a conversation-analysis service
(turns of text, each with a `participantId`, no times) into callscope's transcript JSON.

    python docs/examples/convert_conversation_items.py INPUT.json > transcript.json
    callscope import transcript.json --meta meta.json

The input holds no timing, so the converter gives each turn a duration from its word count at an
assumed speaking rate (150 words a minute) with a pause between turns; metrics that depend on
time (talk time, pauses, monologues) then describe that assumed pacing, not the real call. Who
speaks comes from `participantId` (ROLES below: adapt it to the ids your system uses). Standard
library only: copy it and change what your vendor's format needs.
"""

from __future__ import annotations

import json
import sys

ROLES = {"agent": "agent", "customer": "customer"}  # participantId (lower-cased) → role
WORDS_PER_SECOND = 150 / 60
PAUSE_S = 0.6


def convert(document: dict, conversation: int = 0) -> dict:
    """Callscope's transcript JSON for one conversation of DOCUMENT."""
    conv = document["analysisInput"]["conversations"][conversation]
    segments, clock = [], 0.0
    for number, item in enumerate(conv["conversationItems"], start=1):
        participant = str(item.get("participantId", ""))
        role = ROLES.get(participant.lower())
        if role is None:
            raise ValueError(f"turn {number}: participantId {participant!r} is not in ROLES")
        tokens = item["text"].split()
        if not tokens:
            continue
        words = []
        for token in tokens:
            end = clock + 1 / WORDS_PER_SECOND
            words.append({"text": token, "start_s": round(clock, 3), "end_s": round(end, 3)})
            clock = end
        segments.append(
            {
                "speaker": role,
                "start_s": words[0]["start_s"],
                "end_s": words[-1]["end_s"],
                "text": item["text"],
                "words": words,
            }
        )
        clock += PAUSE_S
    language = str(conv.get("language", "")).split("-")[0] or None
    return {"language": language, "segments": segments}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        json.dump(convert(json.load(f)), sys.stdout, ensure_ascii=False, indent=1)
