"""Fixtures shared by every test."""

from __future__ import annotations

from db_fixtures import db_url, empty_db_url, pg_server, store  # noqa: F401 (pytest fixtures)
