"""Settings from the environment (prefix ``COURTSIDE_``), built by a function, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-0000000000000000"  # noqa: S105 - refused outside dev


class Settings(BaseSettings):
    """Every knob of the service. The README's configuration table lists them."""

    model_config = SettingsConfigDict(env_prefix="COURTSIDE_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    var_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_broker_url: str = ""
    celery_always_eager: bool = False

    storage_backend: Literal["local", "s3"] = "local"
    media_dir: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str = "courtside"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    # Where fans reach the API (behind a proxy or CDN); unset: the address each request came to.
    public_base_url: str | None = None
    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    playback_token_ttl_s: int = Field(default=6 * 3600, gt=0)
    session_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)
    ffmpeg_bin: str = "ffmpeg"
    ffprobe_bin: str = "ffprobe"
    transcode_timeout_s: int = Field(default=3600, gt=0)
    # Viewer resolution (rights): client IPs only through these proxies; GeoIP databases.
    trusted_proxies: list[str] = Field(default_factory=list)
    cdn_country_header: str | None = None
    geoip_country_db: Path | None = None
    geoip_city_db: Path | None = None
    geoip_anonymous_db: Path | None = None
    geoip_max_age_days: int = Field(default=45, gt=0)
    # Development only: treat loopback viewers as being in this country (refused in production).
    dev_loopback_country: str | None = None
    token_leeway_s: int = Field(default=30, ge=0, le=300)
    # Longest any API process serves rights it cached, even if an invalidation was lost.
    rights_cache_max_age_s: float = Field(default=30.0, gt=0, le=3600)
    # Resumable uploads: part size offered to clients, and how long an unfinished one lives.
    upload_part_bytes: int = Field(default=16 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    upload_expiry_s: int = Field(default=24 * 3600, gt=0)
    # Pulling clips from URLs (and league feeds): limits, and the networks exempt from the
    # refusal of loopback/private/link-local addresses. Empty (the default) exempts none;
    # tests set ["127.0.0.0/8"] to serve files from loopback.
    pull_timeout_s: int = Field(default=600, gt=0)
    pull_allowed_networks: list[str] = Field(default_factory=list)
    feed_min_interval_s: int = Field(default=60, gt=0)
    # Probe limits: longer, larger or faster sources are refused with a reason code.
    max_duration_s: int = Field(default=4 * 3600, gt=0)
    max_dimension_px: int = Field(default=4096, gt=0)
    max_fps: float = Field(default=120.0, gt=0)
    # Sources longer than this are split into chunks encoded by separate tasks.
    chunk_threshold_s: int = Field(default=300, gt=0)
    chunk_length_s: int = Field(default=120, gt=0)
    hls_segment_s: int = Field(default=4, ge=1, le=10)
    # A processing attempt silent for this long is re-queued (or failed) by the watchdog.
    stuck_after_s: int = Field(default=900, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_retry_window_s: int = Field(default=24 * 3600, gt=0)
    # Live: the RTMP edge (nginx-rtmp) partners push to, and where live workers pull from.
    rtmp_listen: str = "127.0.0.1:1935"
    rtmp_public_url: str = "rtmp://127.0.0.1:1935/live"
    rtmp_pull_url: str = "rtmp://127.0.0.1:1935/live"
    # Networks allowed to pull (play) from the edge: the live workers, never fans.
    rtmp_play_networks: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # The API as nginx reaches it for on_publish/on_publish_done.
    rtmp_hook_base_url: str = "http://127.0.0.1:8000"
    live_segment_s: float = Field(default=1.0, ge=1.0, le=2.0)
    live_window_segments: int = Field(default=12, ge=3, le=60)
    live_dvr_window_s: int = Field(default=3600, ge=60, le=6 * 3600)
    # A publisher that drops and returns within this many seconds continues the same stream.
    live_reconnect_grace_s: int = Field(default=30, ge=0, le=600)
    # CPU cores one live ladder may use; rungs and preset are chosen to keep up within it.
    live_cpu_budget_cores: float = Field(default=1.5, gt=0, le=64)
    # A live task silent this long (publisher still there) is replaced by a new one.
    live_takeover_after_s: int = Field(default=8, ge=2, le=300)
    # The longest clip a partner may cut from a live stream's DVR (rights limits apply too).
    live_clip_max_s: int = Field(default=600, ge=1, le=3600)
    # A live encoder that completes no segment for this long (input silent) is restarted.
    live_stall_s: float = Field(default=8.0, ge=2, le=120)
    # WebRTC: WHEP preview viewers per stream, and the host addresses ICE may offer (empty:
    # every interface but loopback, aioice's default; tests and containers name theirs).
    whep_max_viewers: int = Field(default=4, ge=0, le=50)
    webrtc_host_addresses: list[str] = Field(default_factory=list)
    # Networks WebRTC peers may be reached at (empty: anywhere); tests keep it to loopback.
    webrtc_peer_networks: list[str] = Field(default_factory=list)
    # WHIP ingest: peer connections one API process holds at most, the frame rate its
    # republisher encodes at, and how long a publisher may send nothing before it is dropped.
    whip_max_sessions: int = Field(default=4, ge=0, le=64)
    whip_fps: int = Field(default=30, ge=10, le=60)
    whip_idle_timeout_s: float = Field(default=10.0, ge=2, le=300)
    # Live comments: Redis Stream history kept per channel (approximate MAXLEN) and sent on
    # join, the fan-out flush interval (events batched per WebSocket frame), each connection's
    # send queue in frames (a client further behind is closed with 4008), text limit, and the
    # per-user token bucket (messages per window, then a cool-down).
    comments_history_max: int = Field(default=1000, ge=10, le=100_000)
    comments_join_history: int = Field(default=50, ge=0, le=500)
    comments_flush_ms: int = Field(default=100, ge=5, le=2000)
    comments_queue_frames: int = Field(default=64, ge=2, le=4096)
    comments_max_chars: int = Field(default=300, ge=1, le=5000)
    comments_rate_messages: int = Field(default=3, ge=1, le=1000)
    comments_rate_window_s: float = Field(default=2.0, gt=0, le=3600)
    comments_cooldown_s: float = Field(default=10.0, ge=0, le=3600)
    # How often connected comment readers' rights are checked again (a revoked grant or a
    # new blackout closes their connection with 4451).
    comments_rights_recheck_s: float = Field(default=10.0, gt=0, le=3600)
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("secret_key")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("COURTSIDE_SECRET_KEY must be at least 32 characters")
        return value

    def model_post_init(self, __context: object) -> None:
        if self.environment == "production" and self.secret_key.get_secret_value() == DEV_SECRET:
            raise ValueError("set COURTSIDE_SECRET_KEY: the development secret is refused")
        if self.environment == "production" and self.dev_loopback_country:
            raise ValueError("COURTSIDE_DEV_LOOPBACK_COUNTRY is for development only")

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL; the embedded default is a SQLite file under ``var_dir``."""
        return self.database_url or f"sqlite:///{self.var_dir / 'courtside.db'}"

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def local_media_dir(self) -> Path:
        return self.media_dir or self.var_dir / "media"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
