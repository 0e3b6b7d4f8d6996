"""The settings object: read once from the environment and an optional TOML file."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator

from callscope import errors

ENV_PREFIX = "CALLSCOPE_"


class ConfigError(errors.Refused):
    """The settings file or an environment variable holds a value callscope cannot use."""


class Settings(BaseModel):
    """Everything callscope reads from its environment; see `callscope config`."""

    data_dir: Path = Field(
        Path("./callscope-data"), description="where the database, media and models live"
    )
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite in the data dir")
    media_url: str = Field(
        "",
        description="media store: a folder or s3://bucket/prefix (default: DATA_DIR/media)",
    )
    max_upload_mb: int = Field(1024, gt=0, description="largest audio file accepted at ingest")
    max_audio_hours: float = Field(12.0, gt=0, description="longest recording accepted at ingest")
    asr_model: str = Field("base", description="bundled Whisper model (base, tiny.en) or a path")
    asr_model_en: str = Field(
        "",
        description="Whisper model for English calls (bundled name or path); default ASR_MODEL",
    )
    asr_model_id: str = Field(
        "",
        description="Whisper model for Indonesian calls (bundled name or path); default ASR_MODEL",
    )
    asr_device: str = Field("cpu", description="cpu or cuda")
    asr_compute_type: str = Field("int8", description="CTranslate2 compute type")
    asr_beam_size: int = Field(1, ge=1, le=10, description="beam size of the decoder")
    asr_threads: int = Field(0, ge=0, description="CPU threads for speech recognition (0: all)")
    model_dir: Path | None = Field(None, description="speech model cache; default: DATA_DIR/models")
    vad: bool = Field(True, description="skip what voice activity detection finds is not speech")
    vad_threshold: float = Field(
        0.35, gt=0, lt=1, description="speech probability from which a stretch is speech"
    )
    vad_min_silence_ms: int = Field(
        2000, ge=100, description="a pause this long ends a stretch of speech"
    )
    vad_pad_ms: int = Field(400, ge=0, description="audio kept either side of a stretch of speech")
    database_lock_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="how long a write waits for another's lock (then 503)"
    )
    job_stale_after_s: float = Field(
        60.0, gt=0, description="a job without heartbeat this long was abandoned and is retried"
    )
    broker_url: str = Field(
        "", description="Celery broker (redis://…) for distributed workers; default: none"
    )
    webhook_retry_base_s: float = Field(
        30.0, gt=0, description="first retry of a failed webhook delivery; doubles each time"
    )
    broker_visibility_timeout_s: float = Field(
        3600.0, gt=0, description="an unacknowledged task is delivered again after this long"
    )
    live_resume_s: float = Field(
        30.0, ge=0, description="how long a live call whose connection dropped may resume"
    )
    live_max_minutes: float = Field(240.0, gt=0, description="longest live call accepted")
    live_streams_per_token: int = Field(
        50, ge=1, description="live calls one ingest token may stream at once"
    )
    live_max_frame_kb: int = Field(64, ge=1, description="largest message a live stream may send")
    live_max_speed: float = Field(
        1.5, gt=0, description="how much faster than real time a live stream may send audio"
    )
    timezone: str = Field("UTC", description="time zone the pages show times in (IANA name)")
    host: str = Field("127.0.0.1", description="address `callscope serve` listens on")
    port: int = Field(8000, gt=0, lt=65536, description="port `callscope serve` listens on")
    trusted_proxies: str = Field(
        "",
        description="reverse proxies (comma-separated addresses) whose X-Forwarded-For is believed",
    )
    secure_cookies: bool = Field(
        False, description="mark the session cookie Secure (set it when served over HTTPS)"
    )
    password_memory_kib: int = Field(
        65536, ge=1024, description="memory each password hash takes (argon2id, KiB)"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as text, or one JSON object per line (json)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="the least important log lines written"
    )
    metrics_token: str = Field(
        "", description="bearer token that reads GET /metrics (empty: /metrics is off there)"
    )
    metrics_port: int = Field(
        0, ge=0, lt=65536, description="a port of its own for the metrics, no token (0: none)"
    )
    metrics_host: str = Field("127.0.0.1", description="address the metrics port listens on")
    oidc_issuer: str = Field(
        "", description="OpenID provider for single sign-on (its issuer URL); empty: none"
    )
    oidc_client_id: str = Field("", description="callscope's client id at the OpenID provider")
    oidc_client_secret: str = Field("", description="callscope's client secret there")
    oidc_scopes: str = Field("openid profile email", description="scopes asked at sign-in")
    oidc_username_claim: str = Field(
        "preferred_username", description="the ID token claim that names the account"
    )
    oidc_groups_claim: str = Field("groups", description="the claim that lists the user's groups")
    oidc_admin_groups: str = Field("", description="groups (comma-separated) of administrators")
    oidc_supervisor_groups: str = Field("", description="groups of supervisors")
    oidc_agent_groups: str = Field("", description="groups of agents")
    oidc_agent_id_claim: str = Field(
        "", description="the claim that holds an agent's external id (agents need one)"
    )
    oidc_local_admins: bool = Field(
        True,
        description="with single sign-on, administrators may still sign in with a local"
        " password (false: nobody signs in locally)",
    )
    backup_key_file: Path | None = Field(
        None,
        description="the key that signs backup manifests, kept apart from the data dir"
        " (default: ~/.config/callscope/backup.key, made on the first backup)",
    )
    config_file: Path | None = Field(None, description="the TOML settings file read, if any")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force (SQLite in the data dir unless set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callscope.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        """The default local media folder (used when CALLSCOPE_MEDIA_URL is not set)."""
        return self.data_dir / "media"

    @property
    def media_cache_dir(self) -> Path:
        """Local copies of media kept in an object store (read for decoding and playback)."""
        return self.data_dir / "media-cache"

    @property
    def tmp_dir(self) -> Path:
        """Where uploads are spooled before they are accepted (same filesystem as media)."""
        return self.data_dir / "tmp"

    def speech_model(self, language: str | None) -> str:
        """The Whisper model that transcribes calls in LANGUAGE (None: the default model, which
        also tells the language of a call that does not give it)."""
        chosen = {"en": self.asr_model_en, "id": self.asr_model_id}.get(language or "", "")
        return chosen or self.asr_model

    @property
    def model_cache_dir(self) -> Path:
        """Where bundled speech models are assembled."""
        return self.model_dir or self.data_dir / "models"

    @property
    def resolved_backup_key_file(self) -> Path:
        """The backup signing key in force."""
        return self.backup_key_file or Path.home() / ".config" / "callscope" / "backup.key"

    @property
    def single_sign_on(self) -> bool:
        """Whether people sign in through an OpenID provider."""
        return bool(self.oidc_issuer)

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        """TRUSTED_PROXIES as a set of addresses."""
        return frozenset(a.strip() for a in self.trusted_proxies.split(",") if a.strip())

    @property
    def max_upload_bytes(self) -> int:
        """The upload cap in bytes."""
        return self.max_upload_mb * 1024 * 1024


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from a TOML file (CALLSCOPE_CONFIG) overlaid by CALLSCOPE_* variables."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_path = env.get(ENV_PREFIX + "CONFIG")
    if config_path:
        path = Path(config_path)
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")).get("callscope", {}))
        except FileNotFoundError as exc:
            raise ConfigError(f"settings file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
        values["config_file"] = path
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env and name != "config_file":
            values[name] = env[key]
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return load_settings()
