"""Wiring: settings, the aiohttp app, background workers, the CLI and the neutral message model."""
