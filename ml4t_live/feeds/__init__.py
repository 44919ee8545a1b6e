"""Feeds: sources of bars for LiveEngine (recorded replays here; venue feeds under venues/)."""

from .replay import ReplayFeed

__all__ = ["ReplayFeed"]
