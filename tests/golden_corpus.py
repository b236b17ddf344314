"""A large, seeded command corpus and the events the write path decides for it: the golden file of the write path.

    python -m tests.golden_corpus --write     # records what the current code decides, after a deliberate change

Every command type, refusals included, over many customers and tickets whose deadlines cross nights, weekends,
holidays and a daylight-saving change. The golden file holds, per command, its outcome and its events as
normalised JSON, so a refactoring of the write path can be checked byte for byte against it.
"""

from __future__ import annotations

import gzip
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid5

import orjson

from domain import commands as c
from domain.desk import TicketDesk
from domain.policy import PolicyBook
from domain.watch import WATCHDOG_SOURCE

GOLDEN_FILE = Path(__file__).parent / "golden" / "write_path.jsonl.gz"
SEED = 20261202
CUSTOMERS = 24
TICKETS = 600
NAMESPACE = UUID("5a0c7e4d-2b1f-4c3a-9e8d-7f6a5b4c3d2e")
# From a Thursday before Easter 2026 (Good Friday, Easter Monday) across the switch to summer time (29 March).
START = datetime(2026, 3, 26, 6, 0, tzinfo=UTC)
PLANS = ("basic", "plus", "standard", "professional")
DEPARTMENTS = ("trouble", "trouble", "accounting", "product", "logs", "guidance")
FOLLOW_UPS = (
    "respond", "respond", "reply", "reply", "escalate", "lower", "await", "resume", "callback", "callback_done",
    "resolve", "reopen", "close", "withdraw", "breach", "at_risk",
)  # fmt: skip


class Corpus:
    """Commands with ids derived from a counter, so two runs give the same commands."""

    def __init__(self, seed: int = SEED):
        self.rng = random.Random(seed)
        self.count = 0

    def ids(self) -> UUID:
        self.count += 1
        return uuid5(NAMESPACE, str(self.count))

    def commands(self) -> Iterator[c.Command]:
        customers = [f"golden-{n:02d}" for n in range(CUSTOMERS)]
        self.plans = {customer: PLANS[n % len(PLANS)] for n, customer in enumerate(customers)}
        for customer, plan in self.plans.items():
            yield self._subscribe(customer, plan, START - timedelta(days=40))
        yield self._subscribe(customers[0], "professional", START + timedelta(days=3))  # a plan change
        stories = [self._story(customers, n) for n in range(TICKETS)]
        yield from self._interleaved(stories)
        yield from self._closings()

    def _closings(self) -> Iterator[c.Command]:
        """March closed by the operator, April too early, and March once more from a source not allowed."""
        april = datetime(2026, 4, 6, 8, 0, tzinfo=UTC)
        for month, source in (("2026-03", "nettask-operator"), ("2026-04", "nettask-operator"), ("2026-03", "crm")):
            yield c.CloseMonth(command_id=self.ids(), occurred_at=april, actor="ops", source=source, month=month)

    def _subscribe(self, customer: str, plan: str, start: datetime) -> c.SubscribePlan:
        return c.SubscribePlan(
            command_id=self.ids(), occurred_at=start, actor="crm", customer_id=customer, plan=plan,
            effective_from=start,
        )  # fmt: skip

    def _story(self, customers: list[str], n: int) -> list[c.Command]:
        rng = self.rng
        opened_at = START + timedelta(minutes=rng.randrange(0, 9 * 24 * 60))
        customer = "golden-unknown" if rng.random() < 0.02 else rng.choice(customers)
        # Mostly what the customer's plan includes, now and then what it does not (a refusal).
        usual = DEPARTMENTS[:2] if self.plans.get(customer) in ("basic", "plus") else DEPARTMENTS
        department = rng.choice(DEPARTMENTS if rng.random() < 0.1 else usual)
        channel = "phone" if department == "trouble" and rng.random() < 0.2 else "ticket"
        opening = c.OpenTicket(
            command_id=self.ids(), occurred_at=opened_at, actor="portal", source="portal", reference=f"G-{n}",
            customer_id=customer, department=department, channel=channel, severity=rng.choice("ABC"),
            language=rng.choice(("en", "de")), subject=f"golden ticket {n}",
        )  # fmt: skip
        story: list[c.Command] = [opening]
        at = opened_at
        for _ in range(rng.randrange(0, 9)):
            at += timedelta(minutes=rng.choice((5, 30, 90, 240, 600, 1500)))
            story.append(self._follow_up(rng.choice(FOLLOW_UPS), opening.ticket_id, at))
        if rng.random() < 0.05:
            story.append(story[-1])  # a repeat: changes nothing
        return story

    def _follow_up(self, kind: str, ticket_id: UUID, at: datetime) -> c.Command:
        common = {"command_id": self.ids(), "occurred_at": at, "actor": "agent.golden", "ticket_id": ticket_id}
        rng = self.rng
        watchdog = {**common, "actor": "watchdog", "source": WATCHDOG_SOURCE}
        builders = {
            "respond": lambda: c.RecordResponse(**common),
            "reply": lambda: c.RecordCustomerReply(**common),
            "escalate": lambda: c.EscalateTicket(**common, to_severity=rng.choice("AB"), escalation_phone=rng.random() < 0.3),  # noqa: E501
            "lower": lambda: c.ChangeSeverity(**common, to_severity="C", reason="workaround found"),
            "await": lambda: c.AwaitCustomer(**common, reason="waiting for the logs"),
            "resume": lambda: c.ResumeTicket(**common),
            "callback": lambda: c.RequestCallback(**common, note="after 14:00"),
            "callback_done": lambda: c.CompleteCallback(**common),
            "resolve": lambda: c.ResolveTicket(**common, resolution="restarted the pool"),
            "reopen": lambda: c.ReopenTicket(**common, reason="back again"),
            "close": lambda: c.CloseTicket(**common),
            "withdraw": lambda: c.WithdrawTicket(**common, reason="opened by mistake"),
            "breach": lambda: c.RecordSlaBreach(**watchdog, metric=rng.choice(("first_response", "next_response:1"))),
            "at_risk": lambda: c.FlagSlaAtRisk(**watchdog, metric="first_response"),
        }  # fmt: skip
        return builders[kind]()

    def _interleaved(self, stories: list[list[c.Command]]) -> Iterator[c.Command]:
        """Tickets interleaved at random, each ticket's own order kept, as they would arrive on their partitions."""
        turns = [n for n, story in enumerate(stories) for _ in story]
        self.rng.shuffle(turns)
        positions = [0] * len(stories)
        for n in turns:
            yield stories[n][positions[n]]
            positions[n] += 1


def decided(book: PolicyBook) -> Iterator[bytes]:
    """One normalised JSON line per command: the command, its outcome, its reason and its events."""
    desk = TicketDesk(book)
    for command in Corpus().commands():
        outcome = desk.handle(command)
        yield orjson.dumps(
            {
                "command": command.model_dump(mode="json"),
                "status": outcome.status,
                "kind": outcome.kind,
                "reason": outcome.reason,
                "events": [{"type": e.type, **e.model_dump(mode="json")} for e in outcome.events],
            },
            option=orjson.OPT_SORT_KEYS,
        )


def read_golden() -> list[bytes]:
    with gzip.open(GOLDEN_FILE, "rb") as lines:
        return lines.read().splitlines()


def write_golden(book: PolicyBook) -> int:
    GOLDEN_FILE.parent.mkdir(exist_ok=True)
    lines = list(decided(book))
    # mtime=0: the same content gives the same bytes, so git sees a change only when the decisions change.
    with gzip.GzipFile(GOLDEN_FILE, "wb", mtime=0) as out:
        out.write(b"\n".join(lines) + b"\n")
    return len(lines)


if __name__ == "__main__":
    from infra.policy_files import load_policy

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.golden_corpus --write")
    print(f"{write_golden(load_policy())} commands decided into {GOLDEN_FILE}")
