"""Shop platform connectors in common: the `[[shops]]` entries, what a connector does, and
how commerce and intercepts are routed to the shop's own connector."""
