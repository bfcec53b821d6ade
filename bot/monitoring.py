"""Prometheus metrics, one registry per App (no process globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.articles_ingested = Counter(
            "digestbot_articles_ingested", "Articles stored (new or updated)", ["source", "kind"], registry=r
        )
        self.rejected = Counter(
            "digestbot_inputs_rejected", "Inputs rejected by sources", ["source"], registry=r
        )
        self.duplicates = Gauge("digestbot_duplicates", "Stored articles folded as duplicates", registry=r)
        self.stories = Gauge("digestbot_stories", "Stories in the store", registry=r)
        self.messages_sent = Counter(
            "digestbot_messages_sent", "Messages accepted by a platform", ["adapter"], registry=r
        )
        self.send_failures = Counter(
            "digestbot_send_failures", "Failed sends by kind", ["adapter", "kind"], registry=r
        )
        self.rate_limited = Counter(
            "digestbot_rate_limited", "429 / ratelimited answers received", ["adapter"], registry=r
        )
        self.outbox_depth = Gauge("digestbot_outbox_depth", "Pending outbox messages", registry=r)
        self.outbox_oldest_age = Gauge(
            "digestbot_outbox_oldest_age_seconds", "Age of the oldest pending message", registry=r
        )
        self.lease_held = Gauge(
            "digestbot_lease_held", "1 when this process holds the lease", ["name"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
