"""Every problem of a workflow, collected and reported at once, each naming where it is."""

from __future__ import annotations

from vaultflow.base.errors import InputError


class Problems:
    """Problems of one workflow (``subject``), raised together as one ``InputError`` (at most 20 shown)."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}" if where else message)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:20]
        more = f"\n  ... and {len(self.items) - 20} more" if len(self.items) > 20 else ""
        lines = "\n  ".join(shown)
        raise InputError(f"{self.subject} cannot run locally:\n  {lines}{more}")
