"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from handlers.logistics.stats import LogisticsStats


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "refundops_events_total",
            "Inbound events by result (accepted, duplicate, rejected)",
            ["status"],
            registry=self.registry,
        )
        self.events_applied = Counter(
            "refundops_events_applied_total",
            "Stored events applied by the processor, by type and result",
            ["type", "result"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "refundops_outbox_depth",
            "Outbox items not yet done, by state (pending, dead)",
            ["state"],
            registry=self.registry,
        )
        self.events_pending = Gauge(
            "refundops_events_pending", "Stored events not yet applied", registry=self.registry
        )
        self.dispatched = Counter(
            "refundops_dispatched_total",
            "Outbox items finished, by kind and result (done, dead)",
            ["kind", "result"],
            registry=self.registry,
        )
        self.dispatch_failures = Counter(
            "refundops_dispatch_failures_total",
            "Failed outbox attempts (each retry counts), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.timers_fired = Counter(
            "refundops_timers_fired_total",
            "Timers fired, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.commands = Counter(
            "refundops_commands_total",
            "Chat commands and clicks, by channel and result (ok, refused)",
            ["channel", "result"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "refundops_ingest_seconds",
            "Time to answer POST /api/v1/events",
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        # Read from the database at scrape time, so every instance reports the same totals.
        self.intercepts = Gauge(
            "refundops_intercepts",
            "Parcel intercepts so far, by outcome (requested, succeeded, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.intercept_saved = Gauge(
            "refundops_intercept_saved_yuan",
            "Money saved: refund amounts of intercepted parcels, in yuan",
            registry=self.registry,
        )
        self.anomalies = Gauge(
            "refundops_anomalies",
            "Logistics anomalies raised so far, by kind and carrier",
            ["kind", "carrier"],
            registry=self.registry,
        )

    def observe_logistics(self, stats: LogisticsStats) -> None:
        self.intercepts.labels("requested").set(stats.intercepts_tried)
        self.intercepts.labels("succeeded").set(stats.intercepts_succeeded)
        self.intercepts.labels("failed").set(stats.intercepts_failed)
        self.intercept_saved.set(stats.money_saved_fen / 100)
        for (kind, carrier), n in stats.anomalies.items():
            self.anomalies.labels(kind, carrier).set(n)
