"""Parcels and logistics anomalies: the carriers, the watch, the anomaly cases and their figures."""
