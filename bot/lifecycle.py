"""Admin lifecycle commands (/retrain, /drift, /models, /rollback). Placeholder until the jobs land."""

from __future__ import annotations

from telegram.ext import Application


def register_lifecycle_handlers(application: Application, container) -> None:
    """Add the lifecycle command handlers to ``application`` (owned by the jobs work)."""
