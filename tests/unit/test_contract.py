"""The published contract: committed files are current, examples are valid, the schemas accept and refuse."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from consumers.alerts import alert_headers
from consumers.sla_alert import TicketFacts, alert_for, facts_after
from domain.commands import COMMAND_TYPES, TICKET_NAMESPACE, Command, parse_command, ticket_id_for
from domain.desk import TicketDesk
from domain.events import DomainEvent, SlaAtRisk, SlaBreached, TicketEvent
from infra import contract
from infra.cli import app
from infra.cli.schema_cmd import stale_files
from infra.messages import command_headers
from infra.settings import TopicSettings

CONTRACT_DIR = Path(__file__).resolve().parents[2] / "docs" / "contract"
COMMAND_NAMES = sorted(command.__name__ for command in COMMAND_TYPES)


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return contract.contract_files()


@pytest.fixture(scope="module")
def commands_schema(files) -> dict:
    return json.loads(files[contract.COMMANDS_FILE])


@pytest.fixture(scope="module")
def events_schema(files) -> dict:
    return json.loads(files[contract.EVENTS_FILE])


@pytest.fixture(scope="module")
def alerts_schema(files) -> dict:
    return json.loads(files[contract.ALERTS_FILE])


@pytest.fixture(scope="module")
def asyncapi(files) -> dict:
    return json.loads(files[contract.ASYNCAPI_FILE])


# --- the files ------------------------------------------------------------------------------------------------


def test_the_committed_contract_files_are_what_the_models_generate_now(files):
    stale = stale_files(CONTRACT_DIR, files)

    assert not stale, f"docs/contract is stale ({', '.join(stale)}): run `make schema`"


def test_generation_is_deterministic_sorted_and_ends_with_a_newline(files):
    assert contract.contract_files() == files
    for name, text in files.items():
        assert text.endswith("\n") and not text.endswith("\n\n"), name
        if name.endswith(".json"):
            assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n", name


def test_the_environment_does_not_change_the_contract(monkeypatch, files):
    monkeypatch.setenv("NETTASK_TOPIC_COMMANDS", "elsewhere.commands")

    assert contract.contract_files() == files


def test_the_readme_spells_out_the_namespace_and_the_derived_example_id(files):
    readme = files[contract.README_FILE]

    assert str(TICKET_NAMESPACE) in readme
    assert str(ticket_id_for("portal", "T-1001")) in readme
    assert str(uuid.uuid5(TICKET_NAMESPACE, "portal:T-1001")) in readme


def test_nettask_schema_writes_every_file_and_names_each(tmp_path, files):
    result = CliRunner().invoke(app, ["schema", "--out", str(tmp_path / "contract")])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"wrote {tmp_path / 'contract' / name}" for name in files]
    assert {name: (tmp_path / "contract" / name).read_text(encoding="utf-8") for name in files} == files


def test_nettask_schema_check_names_the_stale_files_and_writes_nothing(tmp_path, files):
    CliRunner().invoke(app, ["schema", "--out", str(tmp_path)])
    (tmp_path / contract.EVENTS_FILE).write_text("{}\n")
    (tmp_path / contract.README_FILE).unlink()

    result = CliRunner().invoke(app, ["schema", "--check", "--out", str(tmp_path)])

    assert result.exit_code == 1
    assert f"stale contract files in {tmp_path}: {contract.EVENTS_FILE}, {contract.README_FILE}" in result.output
    assert "make schema" in result.output
    assert (tmp_path / contract.EVENTS_FILE).read_text() == "{}\n"
    assert not (tmp_path / contract.README_FILE).exists()


def test_nettask_schema_check_passes_on_current_files(tmp_path):
    CliRunner().invoke(app, ["schema", "--out", str(tmp_path)])

    result = CliRunner().invoke(app, ["schema", "--check", "--out", str(tmp_path)])

    assert result.exit_code == 0
    assert "up to date" in result.output


# --- examples -------------------------------------------------------------------------------------------------


def readme_examples(readme: str) -> list[dict]:
    examples = readme.split("\n## Examples\n", 1)[1]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", examples, flags=re.DOTALL)]


def test_the_readme_has_one_valid_example_per_command_type(files):
    examples = readme_examples(files[contract.README_FILE])

    assert sorted(example["type"] for example in examples) == COMMAND_NAMES
    for example in examples:
        assert type(parse_command(example)).__name__ == example["type"]
        assert type(parse_command(json.dumps(example))).__name__ == example["type"]


def test_asyncapi_examples_parse_and_carry_the_headers_the_client_sends(asyncapi):
    messages = asyncapi["components"]["messages"]
    for name in COMMAND_NAMES:
        (example,) = messages[name]["examples"]
        command = parse_command(example["payload"])

        assert type(command).__name__ == name
        assert example["headers"] == {key: value.decode() for key, value in command_headers(command)}


# --- a small validator for the JSON Schema keywords the contract uses (jsonschema is not installed) -----------

ANNOTATIONS = {"$schema", "$id", "title", "description", "default", "discriminator", "x-kafka-key", "x-message-type"}
CHECKED = {"$ref", "$defs", "oneOf", "anyOf", "allOf", "type", "const", "enum", "properties", "required"}
CHECKED |= {"additionalProperties", "items", "minLength", "maxLength", "pattern", "minimum", "format"}
TYPES = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool, "null": type(None)}


def violations(schema: dict, value: Any, root: dict, at: str = "$") -> list[str]:
    """What is wrong with `value` under `schema`; an empty list when it is valid."""
    assert set(schema) <= ANNOTATIONS | CHECKED, f"the test validator does not know {set(schema) - CHECKED}"
    found: list[str] = []
    if "$ref" in schema:
        found += violations(resolve(root, schema["$ref"]), value, root, at)
    for branch in schema.get("allOf", []):
        found += violations(branch, value, root, at)
    if "anyOf" in schema and all(violations(b, value, root, at) for b in schema["anyOf"]):
        found.append(f"{at}: matches no anyOf branch")
    if "oneOf" in schema and sum(not violations(b, value, root, at) for b in schema["oneOf"]) != 1:
        found.append(f"{at}: does not match exactly one oneOf branch")
    return found + type_violations(schema, value, at) + value_violations(schema, value, at) + (
        object_violations(schema, value, root, at) if isinstance(value, dict) else []
    ) + [v for i, item in enumerate(value if isinstance(value, list) else []) if "items" in schema
         for v in violations(schema["items"], item, root, f"{at}[{i}]")]  # fmt: skip


def resolve(root: dict, ref: str) -> dict:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def type_violations(schema: dict, value: Any, at: str) -> list[str]:
    expected = schema.get("type")
    if expected is None:
        return []
    fits = isinstance(value, TYPES[expected]) and not (expected == "integer" and isinstance(value, bool))
    return [] if fits else [f"{at}: not of type {expected}"]


def value_violations(schema: dict, value: Any, at: str) -> list[str]:
    checks = {
        "const": lambda: value == schema["const"],
        "enum": lambda: value in schema["enum"],
        "minimum": lambda: not isinstance(value, int) or value >= schema["minimum"],
        "minLength": lambda: not isinstance(value, str) or len(value) >= schema["minLength"],
        "maxLength": lambda: not isinstance(value, str) or len(value) <= schema["maxLength"],
        "pattern": lambda: not isinstance(value, str) or re.search(schema["pattern"], value) is not None,
        "format": lambda: not isinstance(value, str) or formatted(schema["format"], value),
    }
    return [f"{at}: fails {keyword}" for keyword, holds in checks.items() if keyword in schema and not holds()]


def formatted(format_name: str, text: str) -> bool:
    parse = {"uuid": uuid.UUID, "date-time": datetime.fromisoformat}[format_name]
    try:
        parse(text)
    except ValueError:
        return False
    return True


def object_violations(schema: dict, value: dict, root: dict, at: str) -> list[str]:
    properties = schema.get("properties", {})
    found = [f"{at}: misses {name}" for name in schema.get("required", []) if name not in value]
    if schema.get("additionalProperties") is False:
        found += [f"{at}: has unknown {name}" for name in value if name not in properties]
    for name, item in value.items():
        if name in properties:
            found += violations(properties[name], item, root, f"{at}.{name}")
    return found


# --- the command schema ---------------------------------------------------------------------------------------


def test_the_command_schema_is_a_2020_12_union_discriminated_on_type(commands_schema):
    assert commands_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert commands_schema["$id"].endswith("/commands.schema.json")
    assert commands_schema["discriminator"]["propertyName"] == "type"
    assert sorted(commands_schema["discriminator"]["mapping"]) == COMMAND_NAMES
    for name in COMMAND_NAMES:
        assert "type" in commands_schema["$defs"][name]["required"]


def test_the_command_schema_accepts_every_example_command(commands_schema):
    for command in contract.example_commands():
        assert violations(commands_schema, command.model_dump(mode="json"), commands_schema) == []


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("no offset", {"occurred_at": "2026-03-02T10:00:00"}),
        ("unknown type", {"type": "ReassignTicket"}),
        ("extra field", {"priority": "high"}),
        ("unknown severity", {"severity": "D"}),
        ("command id not a uuid", {"command_id": "42"}),
        ("actor with a space", {"actor": "an agent"}),
        ("empty subject", {"subject": ""}),
        ("subject not text", {"subject": 503}),
        ("no type", {"type": None}),
        ("no customer", {"customer_id": None}),
    ],
)
def test_the_command_schema_and_the_models_both_refuse_a_bad_command(commands_schema, why, change):
    open_ticket = contract.example_value(contract.example_commands()[0])
    bad = {key: value for key, value in {**open_ticket, **change}.items() if value is not None}

    assert violations(commands_schema, bad, commands_schema), why
    with pytest.raises(ValidationError):
        parse_command(bad)


# --- the event schema -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_events(policy_book) -> list[DomainEvent]:
    """Events the engine records: the examples in story order, then a second ticket that breaches and closes."""
    desk = TicketDesk(policy_book)
    examples = {type(command).__name__: command for command in contract.example_commands()}
    story = [examples.pop("SubscribePlan"), *examples.values()]
    second = [
        again(examples["OpenTicket"], "2026-03-02T10:00:00+01:00", reference="T-1002"),
        again(examples["FlagSlaAtRisk"], "2026-03-02T13:30:00+01:00"),
        again(examples["RecordSlaBreach"], "2026-03-02T15:00:00+01:00"),
        again(examples["ResolveTicket"], "2026-03-02T16:00:00+01:00"),
        again(examples["CloseTicket"], "2026-03-02T16:30:00+01:00"),
    ]
    return [event for command in [*story, *second] for event in desk.handle(command).events]


def again(command: Command, when: str, **changes: str) -> Command:
    """The example command once more, for ticket T-1002, with a new id, at another time."""
    value = {**contract.example_value(command), "command_id": str(uuid.uuid4()), "occurred_at": when, **changes}
    if "ticket_id" in value:
        value["ticket_id"] = str(ticket_id_for("portal", "T-1002"))
    return parse_command(value)


def test_real_events_of_every_public_class_match_exactly_their_own_definition(events_schema, real_events):
    assert {event.type for event in real_events} == set(contract.EVENT_NAMES)
    for event in real_events:
        value = event.model_dump(mode="json")

        assert violations(events_schema, value, events_schema) == []
        matching = [
            name for name in contract.EVENT_NAMES if not violations({"$ref": f"#/$defs/{name}"}, value, events_schema)
        ]
        assert event.type in matching
        assert len(matching) == 1 or set(matching) == {"Resumed", "Reopened"}, matching
        assert events_schema["$defs"][event.type]["x-message-type"] == event.type


def test_look_alike_events_are_named_in_the_description_since_only_the_header_tells_them_apart(events_schema):
    resumed, reopened = (events_schema["$defs"][name] for name in ("Resumed", "Reopened"))

    assert (resumed["properties"], resumed["required"]) == (reopened["properties"], reopened["required"])
    assert "same fields: Resumed and Reopened" in events_schema["description"]
    assert "oneOf" not in events_schema


def test_the_event_schema_refuses_a_type_field_and_a_missing_ticket_id(events_schema, real_events):
    opened = real_events[1].model_dump(mode="json")

    assert violations(events_schema, {**opened, "type": "Opened"}, events_schema)
    assert violations(events_schema, {k: v for k, v in opened.items() if k != "ticket_id"}, events_schema)


def test_the_event_schema_names_the_headers_in_its_description(events_schema):
    for header in ("message-type", "schema-version", "message-id", "stream-version", "notification-id"):
        assert f"`{header}`" in events_schema["description"]


# --- AsyncAPI -------------------------------------------------------------------------------------------------


def test_asyncapi_3_has_the_four_topics_as_channels_with_their_default_addresses(asyncapi):
    topics = TopicSettings.model_construct()

    assert asyncapi["asyncapi"] == "3.0.0"
    assert sorted(channel["address"] for channel in asyncapi["channels"].values()) == sorted(
        [topics.commands, topics.commands_dlq, topics.events, topics.sla_alerts]
    )


def test_services_send_commands_and_receive_events_dead_letters_and_alerts(asyncapi):
    actions = {
        asyncapi["channels"][operation["channel"]["$ref"].rsplit("/", 1)[1]]["address"]: operation["action"]
        for operation in asyncapi["operations"].values()
    }

    assert actions == {
        "tickets.commands": "send",
        "tickets.events": "receive",
        "tickets.commands.dlq": "receive",
        "tickets.sla-alerts": "receive",
    }


def test_every_reference_of_the_asyncapi_document_resolves(asyncapi, commands_schema, events_schema, alerts_schema):
    documents = {
        "": asyncapi,
        contract.COMMANDS_FILE: commands_schema,
        contract.EVENTS_FILE: events_schema,
        contract.ALERTS_FILE: alerts_schema,
    }
    for ref in references(asyncapi):
        document, _, pointer = ref.partition("#")
        assert resolve(documents[document], "#" + pointer), ref


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for child in node.values() for ref in references(child)]
    if isinstance(node, list):
        return [ref for child in node for ref in references(child)]
    return []


def test_the_header_schemas_accept_the_headers_the_client_sends(asyncapi):
    schemas = asyncapi["components"]["schemas"]
    for command in contract.example_commands():
        headers = {key: value.decode() for key, value in command_headers(command)}
        assert violations(schemas["CommandHeaders"], headers, asyncapi) == []

    assert violations(schemas["DeadLetterHeaders"], {"message-type": "OpenTicket"}, asyncapi)


def test_commands_are_keyed_by_ticket_id_and_plans_by_customer_id(asyncapi):
    messages = asyncapi["components"]["messages"]

    assert messages["OpenTicket"]["bindings"]["kafka"]["key"]["format"] == "uuid"
    assert "format" not in messages["SubscribePlan"]["bindings"]["kafka"]["key"]
    assert messages["SlaAlert"]["bindings"]["kafka"]["key"]["format"] == "uuid"


# --- the alert schema -----------------------------------------------------------------------------------------


def test_alerts_made_from_real_events_match_the_alert_schema_and_header_schema(alerts_schema, asyncapi, real_events):
    facts, alerts = TicketFacts(), []
    for event in real_events:
        if isinstance(event, SlaBreached | SlaAtRisk):
            alerts.append(alert_for(event, facts))
        if isinstance(event, TicketEvent):
            facts = facts_after(facts, event)

    assert {alert.kind for alert in alerts} == {"breach", "at_risk"}
    for alert in alerts:
        assert violations(alerts_schema, alert.model_dump(mode="json"), alerts_schema) == []
        headers = {key: value.decode() for key, value in alert_headers(alert)}
        assert violations(asyncapi["components"]["schemas"]["AlertHeaders"], headers, asyncapi) == []
    assert violations(alerts_schema, {"kind": "breach"}, alerts_schema)
