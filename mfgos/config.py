"""Configuration from `MFGOS_*` environment variables and a `.env` file (README.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEMO_PLANT = Path(__file__).parent / "data" / "demo_plant.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MFGOS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///mfgos.db"
    plant_file: Path = DEMO_PLANT

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_secret: SecretStr | None = None
    whatsapp_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_url: str = "https://graph.facebook.com"
    bridge_secret: SecretStr | None = None
    bridge_callback_url: str | None = None
    # Slack: area id -> channel id where each exception of the area gets a thread ("*": every other
    # area); without one, people get direct messages. JSON in the environment: {"gears": "C0GEARS"}.
    slack_channels: dict[str, str] = {}
    # With an area channel, the people routed still get direct messages with their buttons and the
    # thread gets one reply per timeline event; false: no DMs, every message is a reply mentioning them.
    slack_direct_messages: bool = True
    thread_language: str = "en"  # the language of area threads (Slack channels, Telegram groups)
    # Telegram: area id -> group chat id where each exception of the area gets a thread (a topic in a
    # forum, a reply chain in a plain group; "*": every other area). JSON: {"gears": "-1001234567890"}.
    telegram_groups: dict[str, str] = {}
    telegram_webhook_url: str | None = None  # public URL of POST /telegram/webhook, registered at start
    whatsapp_api_version: str = "v21.0"
    # An approved template whose body is one parameter ({{1}}): what people outside WhatsApp's 24-hour
    # window get instead of a free-form message; the languages map ours to the template's, {"en": "en_US"}.
    whatsapp_template: str | None = None
    whatsapp_template_languages: dict[str, str] = {}

    mqtt_url: str | None = None
    mqtt_client_id: str | None = None  # fixed per replica (persistent session); default mfgos-<plant>-<host>
    mqtt_shared_group: str | None = None  # replicas split plants/+/+/state as $share/<group>/...
    mqtt_ca_file: Path | None = None  # CA certificates for mqtts:// (PEM); default: the system's
    opcua_url: str | None = None
    signals_webhook_secret: SecretStr | None = None  # POST /signals/mes is off until this is set

    erp: str = "ledger"
    erp_url: str | None = None
    erp_user: str | None = None
    erp_token: SecretStr | None = None
    # `serve` reads master data from the ERP this often (seconds); 0 turns it off. Not with the ledger.
    erp_sync_interval: float = Field(default=900.0, ge=0)

    # Write-back to the MES (docs/mes.md), for a plant file with a `mes:` section: `local` books it in
    # the store (demo, replay), `rest` posts it to MFGOS_MES_URL. The token is sent in the header
    # MFGOS_MES_AUTH_HEADER: as "Bearer <token>" in Authorization, as it stands in any other header.
    mes: str = "local"
    mes_url: str | None = None
    mes_token: SecretStr | None = None
    mes_auth_header: str = "Authorization"
    mes_timeout: float = Field(default=10.0, gt=0, le=60)

    # `serve` on PostgreSQL: process inbound messages in this many processes of their own
    # (mfgos/workers.py); 0 processes them in the web process.
    inbound_workers: int = Field(default=0, ge=0, le=32)
    # PostgreSQL: keep the signals of this many whole months before the current one and drop older
    # months' partitions (docs/operations.md, "Data that grows"); unset keeps every signal.
    retention_months: int | None = Field(default=None, ge=1)

    attachments_dir: Path = Path("mfgos-data/attachments")
    # Photos and voice notes fetched from a URL in a payload are cut off past this size (bytes) and time (s).
    media_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    media_timeout: float = Field(default=30.0, gt=0)
    # Photos of paper read by OCR (nlp/ocr.py, docs/channels.md "Photos of paper"): 0 turns OCR off;
    # an image over this many pixels is not decoded; Tesseract is stopped after this many seconds;
    # `ocr_devanagari` also loads Tesseract's Hindi (Devanagari) model.
    ocr_max_pixels: int = Field(default=40_000_000, ge=0)
    ocr_timeout: float = Field(default=20.0, gt=0, le=120)
    ocr_devanagari: bool = False

    # Host names the app answers to (comma list, e.g. "mfgos.example.com,10.0.0.5"); empty: the host
    # `serve` listens on plus localhost, 127.0.0.1 and [::1] (mfgos/guard.py).
    allowed_hosts: Annotated[list[str], NoDecode] = []

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [h.strip() for h in value.split(",") if h.strip()] if isinstance(value, str) else value

    # Sign-in (docs/security.md). The console's address as people open it: sign-in links point
    # here and the session cookie is `Secure` when it is https; default, the address `serve` listens on.
    public_url: str | None = None
    session_hours: float = Field(default=12.0, gt=0)  # a console session ends this long after sign-in
    # Optional single sign-on (OpenID Connect): the issuer's URL (its /.well-known/openid-configuration
    # is read), and this app's client registered there; the `email` claim picks the person.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
