"""Repositories: queries over one session; they never commit (the caller's `db.begin()` does)."""

from storage.repositories.audit import AuditRepository
from storage.repositories.cases import CaseRepository, StaleCaseError
from storage.repositories.events import EventRepository
from storage.repositories.messages import CardMessageRepository, SandboxMessageRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.parcels import ParcelRepository
from storage.repositories.timers import TimerRepository

__all__ = [
    "AuditRepository",
    "CardMessageRepository",
    "CaseRepository",
    "EventRepository",
    "OutboxRepository",
    "ParcelRepository",
    "SandboxMessageRepository",
    "StaleCaseError",
    "TimerRepository",
]
