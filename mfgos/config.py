"""Configuration from `MFGOS_*` environment variables and a `.env` file (DESIGN.md section 7)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    mqtt_url: str | None = None
    opcua_url: str | None = None

    erp: str = "ledger"
    erp_url: str | None = None
    erp_user: str | None = None
    erp_token: SecretStr | None = None

    attachments_dir: Path = Path("mfgos-data/attachments")
