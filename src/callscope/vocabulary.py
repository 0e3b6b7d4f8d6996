"""The words callscope's data is made of, each defined once: roles, speakers, processing states
and languages. Plain values (StrEnum members equal their strings), no dependencies."""

from __future__ import annotations

from enum import StrEnum

# the languages of speech recognition, sentiment, personal data and the interface
LANGUAGES = ("en", "id")
# words recognised with a mean confidence below this need checking against the audio: a
# transcript is marked uncertain, and automation does not decide from it
UNSURE_BELOW = 0.6


class Role(StrEnum):
    """What a user account may see and do (docs/administration.md#who-sees-what)."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Speaker(StrEnum):
    """Who said a word."""

    AGENT = "agent"
    CUSTOMER = "customer"


class Scope(StrEnum):
    """What an API token may do, besides reading what its user may see."""

    READ = "read"
    INGEST = "ingest"  # also add recordings and transcripts: an administrator's token only


class Status(StrEnum):
    """Where a processing job stands, and with it the conversation it processes."""

    QUEUED = "queued"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


FINISHED = (Status.PROCESSED, Status.FAILED)


class Review(StrEnum):
    """Where a quality evaluation stands."""

    DRAFT = "draft"  # saved as its evaluator goes: seen by nobody else, counted nowhere
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"  # by the agent of the call
    DISPUTED = "disputed"
    ANSWERED = "answered"  # a dispute the supervisor answered
