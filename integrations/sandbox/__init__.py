"""The sandbox channel: a WeCom-like group chat kept in the database, for the demo and tests."""
