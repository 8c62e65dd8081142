"""What every request works with (settings, database, queue, broker, the process's count of the
backlog, the workers' announcements, API document), stored once on the Flask app and read back
typed."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import Flask, current_app
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.backlog import Backlog
from sentiment_core.settings import Settings
from web.waiting import Announcements

EXTENSION = "sentiment"  # the key in app.extensions


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    celery: Celery
    redis: Redis
    backlog: Backlog
    announcements: Announcements
    openapi: dict


def attach_services(app: Flask, services: Services) -> None:
    app.extensions[EXTENSION] = services


def get_services(app: Flask | None = None) -> Services:
    """`app`'s services, or the current app's inside a request."""
    return (current_app if app is None else app).extensions[EXTENSION]
