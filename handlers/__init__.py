"""Domain flows: pure transition tables and the entry points that apply them in one transaction."""
