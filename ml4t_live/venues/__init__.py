"""Venue adapters: one package per venue, split by concern (config, session, gateway, feed, parsing)."""
