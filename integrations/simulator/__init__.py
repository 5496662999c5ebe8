"""The demo's simulated shop: events in through the real API, a commerce backend that answers."""
