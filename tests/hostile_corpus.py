"""A seeded corpus of hostile records for the intake, each saying whether it must be applied or dead-lettered."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import orjson

from domain import commands as c
from infra.messages import command_headers, command_value

T0 = datetime.fromisoformat("2026-03-02T10:00:00+01:00")
# Kinds of dead letter for a record that is not a command at all.
INVALID = frozenset({"schema", "invalid-json", "unknown-type"})
# Bombs: each inflates far past the limit the test sets (2 MiB). Snappy compresses zeros only about 20:1, so
# its bombs stay smaller to fit the broker's 1 MiB message limit.
BOMB_MIB = {"gzip": (8, 20), "lz4": (8, 20), "zstd": (8, 20), "snappy": (4, 8)}
PLACEHOLDER = '"__hostile__"'


class NotUtf8(str):
    """A header key kafka-python writes as bytes that are not UTF-8: its record builder calls `.encode("utf-8")`."""

    def encode(self, *_args, **_kwargs) -> bytes:
        return b"\xff\xfe"


@dataclass(frozen=True)
class Entry:
    """One record to publish: `command` set means it is valid and must be applied, else `kinds` says which
    dead-letter kinds it may get. `codec`: sent by a producer of its own with that compression."""

    name: str
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)
    kinds: frozenset[str] = frozenset()
    command: c.Command | None = None
    codec: str | None = None

    @property
    def valid(self) -> bool:
        return self.command is not None


def valid(name: str, command: c.Command, headers: list | None = None, value: bytes | None = None) -> Entry:
    return Entry(name, command.key.encode(), value or command_value(command), headers or command_headers(command),
                 command=command)  # fmt: skip


def dead(name: str, key: bytes | None, value: bytes | None, kinds, headers: list | None = None) -> Entry:
    return Entry(name, key, value, headers or [], frozenset({kinds} if isinstance(kinds, str) else kinds))


# --- hostile values for a field, as JSON fragments, by what the field holds; none of them is valid there --------

EVERYWHERE = [
    '{"nested": {"deep": [1, {"x": null}]}}', "[1, 2, 3]", "[]", "{}", "1" + "0" * 40, "-1e308", "1e999", "NaN",
    "-Infinity", '"\\ud800"', '"\\udfff\\ud800"', '"' + "x" * 10_000 + '"',
]  # fmt: skip
BY_KIND = {
    "uuid": ['"not-a-uuid"', '""', '"6f1c2b8e-7d4a-5e3b-9c1f"', "12345", '"ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ"',
             '"\\u0000"', "true"],
    "instant": ['"9999-12-31T23:00:00-05:00"', '"0001-01-01T00:00:00+05:00"', '"9999-12-31T23:59:59Z"',
                '"0001-01-01T00:00:00Z"', '"1999-12-31T23:59:59Z"', '"2100-01-01T00:00:01Z"', "1772442000",
                "1772442000.5", '"1772442000"', '"2026-03-02T10:00:00"', '"2026-03-02"', '"next monday"',
                '"2026-02-30T10:00:00+01:00"', '"2026-03-02T24:00:00Z"', '"2026-03-02T10:00:00+25:00"',
                '"\uff12\uff10\uff12\uff16-03-02T10:00:00Z"', '"2026-03-02T10:00:00.1234567891+01:00"', '"NaN"',
                '"-292277026596-12-04T15:30:07Z"', "true"],
    "name": ['""', '"has space"', '"ag\u00ebnt"', '"emoji\U0001f600"', '"rtl\u202eevil"', '"nul\\u0000byte"',
             '"line\\nbreak"', '"' + "x" * 65 + '"', '"\uff41\uff47\uff45\uff4e\uff54"', "42", "true"],
    "text": ['""', '"' + "x" * 2001 + '"', "42", "true"],
    "note": ['"' + "x" * 2001 + '"', "42", "false"],
    "reference": ['""', '"' + "x" * 201 + '"', "7"],
    "severity": ['"a"', '"D"', '""', '" C"', "1", '"\u0410"'],
    "channel": ['"fax"', '""', '"TICKET"', "0"],
    "language": ['"e"', '""', '"' + "x" * 9 + '"', "42"],
    "bool": ["2", "-1", '"maybe"', '"2"'],
}  # fmt: skip
FIELD_KINDS = {
    "command_id": "uuid", "ticket_id": "uuid", "occurred_at": "instant", "effective_from": "instant",
    "actor": "name", "source": "name", "customer_id": "name", "department": "name", "metric": "name", "plan": "name",
    "reference": "reference", "subject": "text", "reason": "text", "resolution": "text", "note": "note",
    "severity": "severity", "to_severity": "severity", "channel": "channel", "language": "language",
    "escalation_phone": "bool",
}  # fmt: skip


def templates(customer: str) -> list[c.Command]:
    """One valid command of every type; follow-ups name tickets never opened, so none touches a real ticket."""

    # Each its own command id and ticket: commands parked under one command id would be taken for redeliveries.
    def common() -> dict:
        return {"command_id": uuid4(), "occurred_at": T0, "actor": "agent.hostile"}

    def ticket() -> dict:
        return {**common(), "ticket_id": uuid4()}

    def watchdog() -> dict:
        return {**ticket(), "source": "nettask-watchdog", "metric": "first_response"}

    return [
        c.OpenTicket(**common(), source="portal", reference=f"HOSTILE-{uuid4().hex[:8]}", customer_id=customer,
                     department="trouble", severity="C", language="en", subject="template"),
        c.EscalateTicket(**ticket(), to_severity="B"), c.ChangeSeverity(**ticket(), to_severity="C", reason="r"),
        c.RecordResponse(**ticket()), c.RecordCustomerReply(**ticket()), c.AwaitCustomer(**ticket(), reason="r"),
        c.ResumeTicket(**ticket()), c.RequestCallback(**ticket(), note="n"), c.CompleteCallback(**ticket()),
        c.ResolveTicket(**ticket(), resolution="r"), c.ReopenTicket(**ticket(), reason="r"), c.CloseTicket(**ticket()),
        c.WithdrawTicket(**ticket(), reason="r"), c.RecordSlaBreach(**watchdog()), c.FlagSlaAtRisk(**watchdog()),
        c.SubscribePlan(**common(), customer_id=f"cust-hostile-{uuid4().hex[:6]}", plan="standard",
                        effective_from=T0),
    ]  # fmt: skip


def field_sweep(customer: str) -> Iterator[Entry]:
    """Every field of every command type with every hostile value of its kind, under the command's own key."""
    for template in templates(customer):
        data = template.model_dump(mode="json")
        for name, info in type(template).model_fields.items():
            if name == "type":
                continue
            nullable = not info.is_required() and info.default is None
            values = EVERYWHERE + BY_KIND[FIELD_KINDS[name]] + ([] if nullable else ["null"])
            for fragment in values:
                text = orjson.dumps({**data, name: "__hostile__"}).decode().replace(PLACEHOLDER, fragment)
                yield dead(f"{template.type}.{name}={fragment[:24]}", template.key.encode(), text.encode(), INVALID)
            if info.is_required():
                yield dead(f"{template.type}.-{name}", template.key.encode(), _without(data, name), INVALID)


def _without(data: dict, name: str) -> bytes:
    return orjson.dumps({k: v for k, v in data.items() if k != name})


# --- records that are not commands at all -----------------------------------------------------------------------

NOT_JSON = [b"hello", b"{type: OpenTicket}", b"{'type': 'OpenTicket'}", b"<command/>", b"undefined", b'{"a":}',
            b"\x00", b"\n\t ", b'{"type":"OpenTicket",}', b"0x1F", b"--", "ticket \u2709".encode(),
            b"\xff\xfe\xfd", b'{"type": "RecordResponse"', b"\xef\xbb\xbf{}"]  # fmt: skip
NOT_AN_OBJECT = [b"NaN", b"[]", b"[1, 2]", b"42", b"-1.5e300", b'"OpenTicket"', b"null", b"true", b"false", b"1e999"]


def not_commands(rng: random.Random, template: c.Command, max_bytes: int) -> Iterator[Entry]:
    key = template.key.encode()
    data = template.model_dump(mode="json")
    for n, value in enumerate(NOT_JSON):
        yield dead(f"not-json-{n}", key, value, "invalid-json")
    for n, value in enumerate(NOT_AN_OBJECT):
        yield dead(f"not-an-object-{n}", key, value, INVALID)
    for n in range(20):
        yield dead(f"binary-{n}", rng.choice([key, None, rng.randbytes(16)]), rng.randbytes(rng.randrange(1, 4000)),
                   INVALID)  # fmt: skip
    yield dead("empty", key, b"", "empty")
    yield dead("null-value", key, None, "empty")
    yield dead("null-key-and-value", None, None, "empty")
    yield dead("utf16", key, orjson.dumps(data).decode().encode("utf-16"), "invalid-json")
    yield dead("nested-arrays", key, b"[" * 10_000 + b"]" * 10_000, "invalid-json")
    yield dead("nested-objects", key, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "invalid-json")
    yield dead("nested-extra", key, orjson.dumps(data)[:-1] + b',"x":' + b"[" * 5000 + b"]" * 5000 + b"}", INVALID)
    yield dead("just-above-limit", key, _padded(data, max_bytes + 1), "oversized")
    yield dead("far-above-limit", key, _padded(data, 1_000_000), "oversized")
    yield dead("at-limit-not-json", key, b"{" * max_bytes, "invalid-json")
    yield dead("array-of-commands", key, orjson.dumps([data]), INVALID)
    for n, kind in enumerate(["DeleteAllTickets", "openticket", "", "OpenTicket ", 42, None, ["x"], {"a": 1}]):
        yield dead(f"type-{n}", key, orjson.dumps({**data, "type": kind}), INVALID)
    yield dead("no-type", key, _without(data, "type"), INVALID)
    for n, extra in enumerate(["is_admin", "__proto__", "constructor", "ticket_id ", "Type", "\u0000", ""]):
        yield dead(f"extra-{n}", key, orjson.dumps({**data, extra: {"x": True}}), "schema")
    duplicate = orjson.dumps(data).decode().replace('"actor":', '"actor":"agent.ok","actor":', 1)
    yield dead("duplicate-key-last-bad", key, duplicate.replace('"agent.hostile"', '"bad actor"').encode(), "schema")


def _padded(data: dict, size: int) -> bytes:
    """A command whose subject makes it exactly `size` bytes long."""
    text = orjson.dumps({**data, "subject": ""})
    return text.replace(b'"subject":""', b'"subject":"' + b"y" * (size - len(text)) + b'"')


# --- the corpus: valid stories with odd but legal values, and the hostile records between them --------------


class Corpus:
    """Seeded: the same seed gives the same records (but fresh command and ticket ids, so topics never clash)."""

    def __init__(self, seed: int, customers: list[str], max_bytes: int):
        self.rng = random.Random(seed)
        self.customers = customers
        self.max_bytes = max_bytes
        self.minute = 0

    def entries(self) -> list[Entry]:
        """Valid stories and hostile records interleaved at random, each story kept in its order."""
        stories = [self._story(n) for n in range(len(LEGAL_TEXT))]
        hostile = list(self._hostile())
        self.rng.shuffle(hostile)
        merged: list[Entry] = []
        while stories or hostile:
            if stories and (not hostile or self.rng.random() < 0.25):
                story = self.rng.choice(stories)
                merged.append(story.pop(0))
                if not story:
                    stories.remove(story)
            else:
                merged.append(hostile.pop())
        return merged

    def bombs(self) -> list[Entry]:
        """Compressed records that inflate past the limit, every codec kafka-python supports."""
        key = str(uuid4()).encode()
        return [
            Entry(f"bomb-{codec}-{mib}MiB", key, bytes(mib * 1024 * 1024), [], frozenset({"oversized"}), codec=codec)
            for codec, sizes in BOMB_MIB.items()
            for mib in sizes
        ]

    def compressed_valid(self) -> list[Entry]:
        """Valid commands in compressed batches within the limit: compression itself is no reason to refuse."""
        return [
            Entry(e.name, e.key, e.value, e.headers, command=e.command, codec=codec)
            for codec in BOMB_MIB
            for e in [valid(f"compressed-{codec}", self._opening(f"compressed {codec}"))]
        ]

    def _story(self, n: int) -> list[Entry]:
        """A ticket opened, answered, waiting on the customer and resolved, with legal but odd text and headers."""
        text = LEGAL_TEXT[n]
        opening = self._opening(text)
        tid, at = opening.ticket_id, opening.occurred_at
        steps = [
            c.RecordResponse(command_id=uuid4(), occurred_at=at + timedelta(minutes=5), actor="agent.x", ticket_id=tid),
            c.AwaitCustomer(command_id=uuid4(), occurred_at=at + timedelta(minutes=6), actor="agent.x", ticket_id=tid,
                            reason=text),
            c.RecordCustomerReply(command_id=uuid4(), occurred_at=at + timedelta(minutes=9), actor="cust",
                                  ticket_id=tid),
            c.ResolveTicket(command_id=uuid4(), occurred_at=at + timedelta(minutes=20), actor="agent.x", ticket_id=tid,
                            resolution=text),
        ]  # fmt: skip
        entries = [valid(f"story-{n}-open", opening), *(valid(f"story-{n}-{s.type}", s) for s in steps)]
        return [self._dressed(entry) for entry in entries]

    def _opening(self, subject: str) -> c.OpenTicket:
        self.minute += 1
        return c.OpenTicket(
            command_id=uuid4(), occurred_at=T0 + timedelta(minutes=self.minute), actor="portal", source="portal",
            reference=f"REF-{uuid4().hex[:12]}", customer_id=self.rng.choice(self.customers), department="trouble",
            severity="C", language="en", subject=subject,
        )  # fmt: skip

    def _dressed(self, entry: Entry) -> Entry:
        """Some valid commands carry odd headers, or odd but legal JSON (duplicate keys, escapes): still commands."""
        roll = self.rng.random()
        if roll < 0.3:
            return Entry(entry.name + "+headers", entry.key, entry.value, [*entry.headers, *self._garbage_headers()],
                         command=entry.command)  # fmt: skip
        if roll < 0.4:
            # With a repeated key, the last one counts (as in JSON.parse): a bad first actor is overwritten.
            value = entry.value.replace(b'"actor":', b'"actor":"bad actor!","actor":', 1)
            return Entry(entry.name + "+duplicate-key", entry.key, value, entry.headers, command=entry.command)
        if roll < 0.5:
            return Entry(entry.name + "+spaces", entry.key, b" \n\t" + entry.value + b"\r\n ", entry.headers,
                         command=entry.command)  # fmt: skip
        return entry

    def _garbage_headers(self) -> list[tuple[str, bytes]]:
        rng = self.rng
        return rng.choice([
            [("x", rng.randbytes(40)), ("x", b""), ("x", b"\xff\xfe\x00")],
            [("", b""), ("\u202e\U0001f600\u0000", b"\x00" * 10)],
            [("message-type", b"DeleteAllTickets"), ("schema-version", b"99999999999999999999")],
            [("dlq-kind", b"spoofed"), ("dlq-source", b"nowhere/0/0"), ("dlq-reason", b"\xff")],
            [(f"h{n}", rng.randbytes(8)) for n in range(500)],
            [("big", b"b" * 200_000)],
        ])  # fmt: skip

    def _hostile(self) -> Iterator[Entry]:
        customer = self.customers[0]
        yield from field_sweep(customer)
        for template in templates(customer):
            yield from not_commands(self.rng, template, self.max_bytes) if template.type == "RecordResponse" else ()
            yield self._wrong_key(template)
        yield from self._refused(customer)
        yield from self._header_garbage(customer)

    def _wrong_key(self, template: c.Command) -> Entry:
        key = self.rng.choice([None, b"", b"T-1", str(uuid4()).encode(), self.rng.randbytes(20)])
        return dead(f"wrong-key-{template.type}", key, command_value(template), "wrong-key")

    def _refused(self, customer: str) -> Iterator[Entry]:
        """Valid commands the desk refuses: follow-ups of tickets never opened (after waiting), a plan-less one."""
        for template in templates(customer)[1:4]:
            yield dead(f"refused-{template.type}", template.key.encode(), command_value(template), "refused")
        nobody = self._opening("no plan").model_copy(update={"customer_id": f"nobody-{uuid4().hex[:6]}"})
        yield dead("refused-no-plan", nobody.key.encode(), command_value(nobody), "refused")

    def _header_garbage(self, customer: str) -> Iterator[Entry]:
        key = str(uuid4()).encode()
        for n in range(12):
            yield dead(f"garbage-headers-{n}", key, b"not json", "invalid-json", self._garbage_headers())
        near_limit = [("big", b"z" * 1_040_000)]
        yield dead("headers-near-broker-limit", key, orjson.dumps({"type": "RecordResponse", **EXTRA}), "schema",
                   near_limit)  # fmt: skip
        yield valid("valid-with-headers-near-limit", self._opening("big headers"), near_limit)
        for n in range(6):
            # kafka-python cannot read these at all: dead-lettered as `unreadable`, without their value.
            value = self.rng.choice([b"not json", b"", command_value(self._opening("unreadable"))])
            headers = [("ok", b"1")] * (n % 2) + [(NotUtf8("k"), b"v")]
            yield dead(f"header-key-not-utf8-{n}", key, value, "unreadable", headers)


# Many wrong fields: the reason is long (4000 characters), which made a dead letter near the limit too large.
EXTRA = {f"extra_field_{n}": n for n in range(200)}
LEGAL_TEXT = [
    "The web shop answers 503", "Zahlung schl\u00e4gt fehl \u2013 \u00dcmlaute", "\U0001f600 emoji \U0001f680 ZWJ "
    "\U0001f469\u200d\U0001f4bb", "RTL \u202e text \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "nul \x00 inside and \x01\x1f control", "combining e\u0301\u0301\u0301", "x" * 2000,
    "\u4e2d\u6587 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4", "\ufeffleading BOM char", "quotes \" ' \\ and </script>",
    "\U0010ffff last code point", "'; DROP TABLE events; --",
]  # fmt: skip


def ticket_ids(entries: list[Entry]) -> set[UUID]:
    return {e.command.ticket_id for e in entries if isinstance(e.command, c.OpenTicket)}  # type: ignore[misc]
