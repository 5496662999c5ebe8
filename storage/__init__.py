"""Persistence: SQLAlchemy models, repositories, migrations and cross-instance coordination."""
