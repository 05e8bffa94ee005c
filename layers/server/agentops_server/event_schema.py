"""The schema of a client event (ELS sections 1 and 3, API.md): what each field and payload key may hold, as
pydantic types checked by one validator call per batch (``BATCH``). ``agentops_server.validation`` runs it in its
place in the order of checks and turns its errors into the API's answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from agentops_verify import MAX_SAFE_INTEGER, SPEC_VERSION, UUID_PATTERN
from pydantic import AfterValidator, ConfigDict, Discriminator, Field, StringConstraints, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs this one, not typing's, before Python 3.12


def _calendar_date(value: str) -> str:
    # The pattern fixes the shape; this rejects impossible dates and times such as 2026-02-30 or 25:00:00. RFC 3339
    # (section 5.6) allows a leap second, :60, which datetime cannot hold: it is checked as :59, as the verifier does.
    date_and_time = value[:19]
    if date_and_time.endswith(":60"):
        date_and_time = date_and_time[:-2] + "59"
    try:
        datetime.fromisoformat(date_and_time)
    except ValueError as exc:
        raise ValueError("not a valid calendar date and time") from exc
    return value


Uuid = Annotated[str, StringConstraints(pattern=f"^{UUID_PATTERN}$")]
# ELS section 1: RFC 3339 UTC with Z, YYYY-MM-DDTHH:MM:SS[.fraction]Z.
Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"),
    AfterValidator(_calendar_date),
]
SafeCount = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
Name = Annotated[str, StringConstraints(min_length=1)]

# The schema is TypedDicts rather than models: validation only answers yes or no (the service hashes the parsed
# values, never validated copies), and pydantic checks a TypedDict about a third faster than a model. An optional
# key may be left out, but when present it has its type: null is not a way to say "absent".

# ELS section 3 payloads are open (redaction adds ``<key>_hash`` siblings, producers add their own keys): what the
# section names is checked strictly, other keys are allowed and not copied. Free-form values (messages, arguments,
# results, state, ...) are any JSON, "[REDACTED]" included.
_PAYLOAD = ConfigDict(strict=True, extra="ignore")
# ELS section 1 fields a client may send (API.md); nothing else.
_EVENT = ConfigDict(strict=True, extra="forbid")
# API.md: the values of optional envelope fields a client leaves out.
ENVELOPE_DEFAULTS = {"timestamp_monotonic": 0, "source_sdk_ver": "unknown", "schema_ver": SPEC_VERSION}


@with_config(_PAYLOAD)
class SessionStartPayload(TypedDict):
    agent_id: Name
    environment: NotRequired[Literal["prod", "staging", "dev"]]
    framework: NotRequired[str]
    framework_version: NotRequired[str]
    sdk_version: NotRequired[str]
    tags: NotRequired[list[str]]
    system_prompt_hash: NotRequired[str]


@with_config(_PAYLOAD)
class SessionEndPayload(TypedDict):
    status: Literal["success", "failure", "timeout", "cancelled"]
    reason: NotRequired[str]
    duration_ms: NotRequired[SafeCount]
    total_cost_usd: NotRequired[Annotated[float, Field(ge=0)]]


@with_config(_PAYLOAD)
class ModelRequestPayload(TypedDict):
    model: Name
    provider: NotRequired[str]
    prompt_hash: NotRequired[str]


@with_config(_PAYLOAD)
class ModelResponsePayload(TypedDict):
    model: Name
    content_hash: NotRequired[str]
    finish_reason: NotRequired[str]


@with_config(_PAYLOAD)
class ToolCallPayload(TypedDict):
    tool_name: Name
    tool_id: NotRequired[str]
    args_hash: NotRequired[str]


@with_config(_PAYLOAD)
class ToolResultPayload(TypedDict):
    tool_name: Name
    tool_id: NotRequired[str]
    result_hash: NotRequired[str]
    status: NotRequired[str]
    duration_ms: NotRequired[SafeCount]


@with_config(_PAYLOAD)
class AgentStateSnapshotPayload(TypedDict):
    checkpoint_id: NotRequired[str]


@with_config(_PAYLOAD)
class DecisionTracePayload(TypedDict):
    decision_id: Name
    inputs: Any
    outputs: Any
    justification: Any
    policy_version: NotRequired[str]


@with_config(_PAYLOAD)
class ErrorPayload(TypedDict):
    error_type: Name
    message: str
    fatal: NotRequired[bool]


@with_config(_PAYLOAD)
class AnnotationPayload(TypedDict):
    annotator_id: Name
    annotation_type: Literal["flag", "comment", "rating"]
    content: Any
    target_event_id: NotRequired[Uuid]


@with_config(_PAYLOAD)
class LogDropPayload(TypedDict):
    dropped_count: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
    cumulative_drops: SafeCount
    drop_reason: Literal["BUFFER_FULL", "NETWORK_LOSS", "SDK_CRASH"]


class _Envelope(TypedDict):
    event_id: Uuid
    sequence_number: SafeCount
    timestamp_wall: Timestamp
    timestamp_monotonic: NotRequired[SafeCount]
    source_sdk_ver: NotRequired[str]
    schema_ver: NotRequired[Literal["v0.6"]]
    session_id: NotRequired[Uuid]
    payload_hash: NotRequired[str]  # optional end-to-end check, compared with the server's value


@with_config(_EVENT)
class SessionStartEvent(_Envelope):
    event_type: Literal["SESSION_START"]
    payload: SessionStartPayload


@with_config(_EVENT)
class SessionEndEvent(_Envelope):
    event_type: Literal["SESSION_END"]
    payload: SessionEndPayload


@with_config(_EVENT)
class ModelRequestEvent(_Envelope):
    event_type: Literal["MODEL_REQUEST"]
    payload: ModelRequestPayload


@with_config(_EVENT)
class ModelResponseEvent(_Envelope):
    event_type: Literal["MODEL_RESPONSE"]
    payload: ModelResponsePayload


@with_config(_EVENT)
class ToolCallEvent(_Envelope):
    event_type: Literal["TOOL_CALL"]
    payload: ToolCallPayload


@with_config(_EVENT)
class ToolResultEvent(_Envelope):
    event_type: Literal["TOOL_RESULT"]
    payload: ToolResultPayload


@with_config(_EVENT)
class AgentStateSnapshotEvent(_Envelope):
    event_type: Literal["AGENT_STATE_SNAPSHOT"]
    payload: AgentStateSnapshotPayload


@with_config(_EVENT)
class DecisionTraceEvent(_Envelope):
    event_type: Literal["DECISION_TRACE"]
    payload: DecisionTracePayload


@with_config(_EVENT)
class ErrorEvent(_Envelope):
    event_type: Literal["ERROR"]
    payload: ErrorPayload


@with_config(_EVENT)
class AnnotationEvent(_Envelope):
    event_type: Literal["ANNOTATION"]
    payload: AnnotationPayload


@with_config(_EVENT)
class LogDropEvent(_Envelope):
    event_type: Literal["LOG_DROP"]
    payload: LogDropPayload


ClientEvent = Annotated[
    SessionStartEvent
    | SessionEndEvent
    | ModelRequestEvent
    | ModelResponseEvent
    | ToolCallEvent
    | ToolResultEvent
    | AgentStateSnapshotEvent
    | DecisionTraceEvent
    | ErrorEvent
    | AnnotationEvent
    | LogDropEvent,
    Discriminator("event_type"),
]
# One validator call for the whole batch (the hot path): pydantic-core walks the list in Rust.
BATCH = TypeAdapter(list[ClientEvent])
