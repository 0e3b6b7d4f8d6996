"""Personal data taken out of a call: redacted words, and a playback rendition with a tone over
each span on the channel of the speaker who said it.

See docs/administration.md#personal-data-redaction.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from callscope.db.models import Conversation, ConversationAnalysis
from callscope.measures import pii, segments
from callscope.review import document
from callscope.speech import isolation, media
from callscope.store import MediaStore, blob_key, tmp_prefix


@dataclass
class Redaction:
    """Personal data taken out of a conversation's words and playback audio."""

    words: list[segments.Word]  # with each span as one `[PII:type]` word
    originals: list[segments.Word]
    spans: list[tuple[str, float, float, str]]  # (speaker, start, end, type)
    playback_key: str | None  # the rendition with tones over the spans (None: nothing found)
    peaks_key: str | None

    def store(self, session: Session, conversation_id: int, keep_originals: bool) -> list[str]:
        """Record the redaction with the results; the media keys no longer wanted."""
        result = session.get_one(ConversationAnalysis, conversation_id)
        result.redactions = [
            {"speaker": who, "start_s": start, "end_s": end, "type": kind}
            for who, start, end, kind in self.spans
        ]
        result.original_transcript = (
            document.html_safe_json([asdict(w) for w in self.originals]) if keep_originals else None
        )
        if self.playback_key is None:
            return []
        rec = session.get_one(Conversation, conversation_id).recording
        assert rec is not None, "a redacted rendition is made from a recording"
        old = (rec.playback_key, rec.peaks_key)
        rec.playback_key, rec.peaks_key = self.playback_key, self.peaks_key
        if keep_originals and rec.original_playback_key is None:
            rec.original_playback_key = old[0]
        unneeded = [k for k in old if k and k != rec.original_playback_key]
        if not keep_originals:  # the uploaded original and any kept rendition go too
            unneeded += [blob_key(rec.sha256), *filter(None, [rec.original_playback_key])]
            rec.original_playback_key = None
        return unneeded


def redact_call(
    store: MediaStore,
    tmp_dir: Path,
    original: str | None,
    words: list[segments.Word],
    roles: dict[int, str],
    order: list[int],
) -> Redaction:
    """Find personal data in WORDS and, where the call has audio (ORIGINAL, a media key), make a
    playback rendition with a tone over each span on the channel of the speaker who said it
    (the one channel of a mono call)."""
    redacted, spans = pii.redact(words)
    if not spans or original is None:
        return Redaction(redacted, words, spans, None, None)
    out_channel = {roles[c]: i for i, c in enumerate(order)}
    tones = [(out_channel.get(who, 0), start, end) for who, start, end, _kind in spans]
    digest = original.rsplit("/", 1)[-1]
    base = f"playback/{digest[:2]}/{digest}-redacted-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix=tmp_prefix("redaction")) as tmp:
        m4a, peaks = Path(tmp) / "r.m4a", Path(tmp) / "r.peaks.json"
        isolation.run(media.make_rendition, store.local_path(original), m4a, peaks, order, tones)
        store.put_file(f"{base}.m4a", m4a, move=True)
        store.put_file(f"{base}.peaks.json", peaks, move=True)
    return Redaction(redacted, words, spans, f"{base}.m4a", f"{base}.peaks.json")
