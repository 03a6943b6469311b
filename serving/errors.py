"""Errors the serving worker answers with an HTTP status (kept light: the service module
imports this without loading the worker's runtime)."""

from __future__ import annotations


class Unavailable(RuntimeError):
    """The worker cannot answer now (no model, no reasons, journal full, store down): HTTP 503."""
