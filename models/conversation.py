"""Conversation state: the question the bot asked a person, and when a stranger was last answered.

The states and their transitions are declared in routing/conversation.py; these rows only keep
them between messages, so a question survives a restart and any replica can take the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class Conversation(SQLModel, table=True):
    """Per person of a plant: where the conversation with the bot stands (one row, reused)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("plant_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    person_id: str
    state: str = "idle"  # routing.conversation.State
    # What the answer completes: a report (its text and extraction) or an action (ack, update, ...).
    pending: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    options: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # offered choices
    questions: int = 0  # how often this question was asked
    signal_id: int | None = Field(default=None, foreign_key="signals.id")  # the message that raised it
    channel: str | None = None  # where it was asked
    asked_at: datetime | None = None
    expires_at: datetime | None = None


class StrangerReply(SQLModel, table=True):
    """The last "not registered" answer to an address the plant does not know (the hourly throttle)."""

    __tablename__ = "stranger_replies"
    channel: str = Field(primary_key=True)
    address: str = Field(primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    replied_at: datetime


class ChatWindow(SQLModel, table=True):
    """When an address last wrote to a channel that only reaches people who wrote lately (WhatsApp's
    24-hour window); in the store so every replica knows what any replica heard.

    `heard_at` is unix seconds of their last message, 0 when the platform refused a free-form
    message (the window is known closed until they write again)."""

    __tablename__ = "chat_windows"
    channel: str = Field(primary_key=True)
    address: str = Field(primary_key=True)
    heard_at: float = 0.0
