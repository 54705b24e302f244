"""The OpenAPI 3.1 description of `/api/v1`, served at `/api/v1/openapi.json`.

Schemas are strict (`additionalProperties: false`) wherever the app builds the
object itself, so a new field has to be documented before clients see it; they
stay open only where the content is free-form by design (alert evidence,
building metadata relayed from peers).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import settings_api

API = "/api/v1"
SESSION_COOKIE = "koprogo_session"
STEPS = ["raw", "15m", "1h", "1d"]
TIERS = ["quarter", "hour", "day"]
ALERT_FILTERS = ["active", "open", "acknowledged", "resolved"]
ALERT_STATES = ["open", "acknowledged", "resolved"]
SOURCE_STATES = ["starting", "running", "failing", "finished"]
QUALITIES = ["ok", "estimated", "clock_unsynced", "out_of_range", "stale"]
AUTHENTICATED = [{"cookieAuth": []}, {"bearerAuth": []}]

Schema = dict[str, Any]


def openapi_document() -> dict:
    """The whole OpenAPI 3.1 document, built afresh on every call."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "koprogo-node API",
            "version": "1",
            "description": "Meters, ledger, alerts and federation of one building.",
        },
        "tags": [
            {"name": "node", "description": "Status, sensors and readings"},
            {"name": "federation", "description": "Peers and neighbours"},
            {"name": "alerts", "description": "Detected problems"},
            {"name": "auth", "description": "Sessions, users and API tokens"},
        ],
        "paths": _node_paths()
        | _federation_paths()
        | _alert_paths()
        | _settings_paths()
        | _auth_paths(),
        "security": AUTHENTICATED,
        "components": {
            "schemas": _read_schemas() | _auth_schemas(),
            "securitySchemes": {
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                },
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def add_routes(app: web.Application) -> None:
    """Serve the document at GET /api/v1/openapi.json."""
    document = openapi_document()

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.add_routes([web.get(f"{API}/openapi.json", serve)])


# schema helpers


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _or_null(schema: Schema) -> Schema:
    """Allow null besides `schema` (3.1 has no `nullable`)."""
    if "type" in schema and len(schema) == 1:
        return {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _closed(required: dict[str, Schema], optional: dict | None = None) -> Schema:
    """An object with exactly these properties (the optional ones may be absent)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": required | (optional or {}),
        "additionalProperties": False,
    }


def _map_of(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}


# operation helpers

ERROR_TEXT = {
    400: "A query parameter or the body is missing or malformed",
    401: "Not signed in, or the token is unknown",
    403: "Signed in without the right to do this",
    404: "No such resource",
    409: "Conflicts with the current state",
    429: "Too many failed attempts; see Retry-After",
    503: "The ledger cannot be read, or detection is off",
}


def _json(schema: Schema, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _op(
    summary: str,
    tag: str,
    ok: Schema | None,
    errors: tuple[int, ...] = (503,),
    status: int = 200,
    public: bool = False,
    **extra: Any,
) -> dict:
    """One operation: its success response and `{"error": ...}` failures."""
    responses = {str(status): _json(ok, "Success") if ok else {"description": "Done"}}
    if public:
        extra["security"] = []  # overrides the document-wide requirement
    else:
        errors = (*errors, 401, 403)
    for code in sorted(errors):
        responses[str(code)] = _json(_ref("Error"), ERROR_TEXT[code])
    return {"summary": summary, "tags": [tag], "responses": responses, **extra}


def _query(name: str, schema: Schema, description: str, required=False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": STR,
        "description": description,
    }


def _body(schema: Schema) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# read-only endpoints


# Unix seconds, or the ISO 8601 forms `datetime.fromisoformat` reads.
UNIX_S = r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"
ISO_8601 = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
TIME = {"type": "string", "anyOf": [{"pattern": UNIX_S}, {"pattern": ISO_8601}]}


def _node_paths() -> dict:
    time_text = "Unix seconds or ISO 8601 (naive means UTC)"
    readings = [
        _query("sensor", {"type": "string", "minLength": 1}, "Channel name", True),
        _query("step", {"type": "string", "enum": STEPS, "default": "raw"}, "Rollup"),
        _query("from", TIME, f"Start, inclusive; {time_text}; default to - 1 day"),
        _query("to", TIME, f"End, exclusive; {time_text}; default now"),
        _query(
            "format",
            {"type": "string", "enum": ["json", "csv"], "default": "json"},
            "csv: the same rows as a CSV file (one header line)",
        ),
    ]
    return {
        f"{API}/status": {
            "get": _op("Node, ingest, ledger and sources", "node", _ref("Status"))
        },
        f"{API}/sensors": {
            "get": _op("Every channel with its last value", "node", _ref("SensorList"))
        },
        f"{API}/readings": {
            "get": _with_csv(
                _op(
                    "Values of one channel, raw or rolled up (at most 400 days)",
                    "node",
                    _ref("Readings"),
                    errors=(400, 404, 503),
                    parameters=readings,
                )
            )
        },
        f"{API}/building": {
            "get": _op("Live power and today's totals", "node", _ref("Building"))
        },
    }


def _with_csv(operation: dict) -> dict:
    """Let the success answer also be text/csv (with ?format=csv)."""
    ok = operation["responses"]["200"]["content"]
    ok["text/csv"] = {"schema": STR}
    return operation


def _federation_paths() -> dict:
    tier = _query(
        "tier", {"type": "string", "enum": TIERS, "default": "hour"}, "Bucket"
    )
    return {
        f"{API}/peers": {
            "get": _op(
                "Every peer seen this run", "federation", _ref("Peers"), errors=()
            )
        },
        f"{API}/peers/{{peer_id}}": {
            "get": _op(
                "One peer",
                "federation",
                _ref("Peer"),
                errors=(404,),
                parameters=[_path("peer_id", "The peer's id (base58)")],
            )
        },
        f"{API}/neighbours": {
            "get": _op(
                "Each building's newest published aggregate",
                "federation",
                _ref("Neighbours"),
                errors=(400, 503),
                parameters=[tier],
            )
        },
    }


def _alert_paths() -> dict:
    state = _query(
        "state", {"type": "string", "enum": ALERT_FILTERS}, "active = not resolved"
    )
    alert_id = _path("alert_id", "The alert's id")
    change = {
        "type": "object",
        "properties": {"note": {"type": "string", "maxLength": 500}},
    }
    note = {
        "type": "object",
        "required": ["note"],
        "properties": {"note": {"type": "string", "maxLength": 500, "pattern": r"\S"}},
    }
    return {
        f"{API}/alerts": {
            "get": _op(
                "Alerts, newest first",
                "alerts",
                _ref("AlertList"),
                errors=(400, 503),
                parameters=[state],
            )
        },
        f"{API}/alerts/{{alert_id}}": {
            "get": _op(
                "One alert",
                "alerts",
                _ref("Alert"),
                errors=(404, 503),
                parameters=[alert_id],
            )
        },
        f"{API}/alerts/{{alert_id}}/ack": {
            "post": _alert_change("Acknowledge an alert", alert_id, change)
        },
        f"{API}/alerts/{{alert_id}}/resolve": {
            "post": _alert_change("Resolve an alert", alert_id, change)
        },
        f"{API}/alerts/{{alert_id}}/note": {
            "post": _alert_change("Add a note to an alert", alert_id, note)
        },
    }


def _alert_change(summary: str, alert_id: dict, change: Schema) -> dict:
    return _op(
        summary,
        "auth",
        _ref("Alert"),
        errors=(400, 404, 409, 503),
        parameters=[alert_id],
        requestBody={
            "required": "required" in change,
            "content": {"application/json": {"schema": change}},
        },
    )


def _read_schemas() -> dict[str, Schema]:
    return {
        "Error": _closed({"error": STR}),
        **_status_schemas(),
        **_sensor_schemas(),
        **_federation_schemas(),
        **_alert_schemas(),
    }


def _status_schemas() -> dict[str, Schema]:
    node = _closed(
        {
            "building_id": STR,
            "peer_id": STR,
            "name": STR,
            "uptime_s": NUM,
            "clock_trusted": BOOL,
        }
    )
    ingest = _closed(
        {
            "committed_total": INT,
            "rate_per_s": NUM,
            "queue_depth": INT,
            "rejects_by_reason": _map_of(INT),
        }
    )
    ledger = _closed(
        {
            "height": INT,
            "created_ms": _or_null(INT),
            "hash": _or_null({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
            "size_bytes": INT,
        }
    )
    return {
        "Status": _closed(
            {
                "node": node,
                "ingest": ingest,
                "ledger": ledger,
                "sources": {"type": "array", "items": _ref("Source")},
                "federation": _or_null(_ref("FederationSummary")),
                "detection": _or_null(_ref("DetectionSummary")),
            }
        ),
        "Source": _closed(
            {
                "name": STR,
                "state": {"type": "string", "enum": SOURCE_STATES},
                "restarts": INT,
                "last_error": STR,
                "failing_since": _or_null(NUM),
            },
            {"devices": _map_of(_ref("DeviceHealth"))},
        ),
        "DeviceHealth": _closed(
            {
                "unit_id": INT,
                "profile": STR,
                "stale": BOOL,
                "polls": INT,
                "good_polls": INT,
                "last_good_ts": _or_null(NUM),
                "errors": _map_of(INT),
            }
        ),
        "DetectionSummary": _closed(
            {
                "checks": INT,
                "active_alerts": INT,
                "model": STR,
                "failing": _or_null(STR),
            }
        ),
    }


def _sensor_schemas() -> dict[str, Schema]:
    raw = _closed(
        {
            "ts_ms": INT,
            "value": NUM,
            "delta": _or_null(NUM),
            # A quality code the node does not name is passed through as a number.
            "quality": {"anyOf": [{"type": "string", "enum": QUALITIES}, INT]},
        }
    )
    rollup = _closed(
        {
            "ts_ms": INT,
            "n": INT,
            "min": _or_null(NUM),
            "max": _or_null(NUM),
            "last": _or_null(NUM),
        },
        {"consumption": _or_null(NUM), "mean": _or_null(NUM)},
    )
    return {
        "Sensor": _closed(
            {
                "name": STR,
                "kind": {"type": "string", "enum": ["counter", "gauge"]},
                "unit": STR,
                "last_ts_ms": _or_null(INT),
                "last_value": _or_null(NUM),
                "age_s": _or_null(NUM),
            },
            {"live_value": NUM, "live_ts_ms": INT},
        ),
        "SensorList": _closed({"sensors": {"type": "array", "items": _ref("Sensor")}}),
        "Readings": _closed(
            {
                "sensor": STR,
                "step": {"type": "string", "enum": STEPS},
                "from_ms": INT,
                "to_ms": INT,
                "readings": {"type": "array", "items": {"oneOf": [raw, rollup]}},
            }
        ),
        "Building": _closed(
            {
                "data_time_ms": _or_null(INT),
                "power_kw": _or_null(NUM),
                "today": _map_of(NUM),
                # The mean of the previous days' totals up to the same hour.
                "usual": _map_of(NUM),
            }
        ),
    }


def _federation_schemas() -> dict[str, Schema]:
    peer = _closed(
        {
            "peer_id": STR,
            "name": _or_null(STR),
            "connected": BOOL,
            "banned": BOOL,
            "address": _or_null(STR),
            "outbound": _or_null(BOOL),
            "connected_since_s": _or_null(NUM),
            "last_message_s": _or_null(NUM),
            "messages": INT,
            "meta": _or_null({"type": "object"}),
        },
        {
            "score": NUM,
            "graylisted": BOOL,
            "topics": {"type": "array", "items": STR},
            "mesh": {"type": "array", "items": STR},
            "invalid": INT,
            "broken_promises": INT,
            "last_frame_s": _or_null(NUM),
        },
    )
    building = _closed(
        {
            "peer_id": STR,
            "self": BOOL,
            "start_s": INT,
            "values": _map_of({"type": "object"}),
            "meta": {
                "type": "object",
                "required": ["decade", "lots_band", "region", "heating"],
            },
            "buckets": INT,
        }
    )
    return {
        "FederationSummary": _closed(
            {
                "peer_id": STR,
                "port": INT,
                "roster_serial": INT,
                "connected": INT,
                "published": INT,
                "withheld": _map_of(INT),
            }
        ),
        "Peer": peer,
        "Peers": _closed(
            {"enabled": BOOL, "peers": {"type": "array", "items": _ref("Peer")}},
            {"federation": _ref("FederationSummary")},
        ),
        "Neighbours": _closed({"buildings": {"type": "array", "items": building}}),
    }


def _alert_schemas() -> dict[str, Schema]:
    return {
        "Alert": _closed(
            {
                "id": STR,
                "kind": STR,
                "sensor": STR,
                "severity": {"type": "string", "enum": ["low", "medium", "high"]},
                "start_ts": NUM,
                "last_ts": NUM,
                # Evidence differs per rule; clients show it as key-value pairs.
                "evidence": {"type": "object"},
                "estimate": _map_of(NUM),
                "state": {"type": "string", "enum": ALERT_STATES},
                "note": STR,
            },
            {"notes": {"type": "array", "items": _ref("AlertNote")}},
        ),
        "AlertNote": _closed({"ts": NUM, "by": STR, "text": STR}),
        "AlertList": _closed({"alerts": {"type": "array", "items": _ref("Alert")}}),
    }


def _settings_paths() -> dict:
    fields = {
        name: {"type": "integer" if isinstance(low, int) else "number"}
        | {"minimum": low, "maximum": high, "description": what}
        for name, (_, low, high, what) in settings_api.FIELDS.items()
    }
    label = {"type": "string", "maxLength": settings_api.MAX_LABEL}
    meter = {
        "type": "object",
        "properties": {"label": label, "watched": BOOL},
        "additionalProperties": False,
    }
    shown = _closed(
        {
            group: _closed(
                {n: f for n, f in fields.items() if settings_api.FIELDS[n][0] == group}
            )
            for group in ("tariffs", "thresholds")
        }
        | {"meters": _map_of(meter)}
    )
    change = {
        "type": "object",
        "properties": fields,
        "additionalProperties": False,
        "minProperties": 1,
    }
    # Printable text only: control characters are refused.
    meter_change = meter | {
        "minProperties": 1,
        "properties": {
            "label": label | {"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"},
            "watched": BOOL,
        },
    }
    return {
        f"{API}/settings": {
            "get": _op("Tariffs, thresholds and meter choices in force", "node", shown),
            "put": _op(
                "Change tariffs or thresholds (admins); applied at once",
                "auth",
                shown,
                errors=(400, 503),
                requestBody=_body(change),
            ),
        },
        f"{API}/settings/meters/{{name}}": {
            "put": _op(
                "Label a meter, or take it off (or back on) the detectors' watch",
                "auth",
                _closed({"name": STR}, {"label": STR, "watched": BOOL}),
                errors=(400, 404),
                parameters=[_path("name", "The meter's channel name")],
                requestBody=_body(meter_change),
            )
        },
    }


# sign-in, users and tokens


def _auth_paths() -> dict:
    return {
        f"{API}/session": {
            "post": _op(
                "Log in; sets the session cookie",
                "auth",
                _ref("Session"),
                errors=(400, 401, 429),
                public=True,
                requestBody=_body(_ref("Credentials")),
            ),
            "get": _op(
                "Who is calling (a session also gets its CSRF token)",
                "auth",
                {"anyOf": [_ref("Session"), _ref("TokenCaller")]},
                errors=(),
            ),
            "delete": _op("Log out", "auth", None, errors=(), status=204),
        },
        f"{API}/setup": {
            "get": _op(
                "Whether the first admin is still to be created",
                "auth",
                _closed({"needed": BOOL}),
                errors=(),
                public=True,
            ),
            "post": _op(
                "Create the first admin with the one-time setup code; logs in",
                "auth",
                _ref("Session"),
                errors=(400, 403, 409, 429),
                public=True,
                requestBody=_body(_ref("Setup")),
            ),
        },
        **_user_paths(),
        **_token_paths(),
    }


def _user_paths() -> dict:
    user = _path("username", "The account's name")
    return {
        f"{API}/users": {
            "get": _op("Every account", "auth", _ref("UserList"), errors=()),
            "post": _op(
                "Create an account",
                "auth",
                _ref("User"),
                errors=(400, 409),
                status=201,
                requestBody=_body(_ref("NewUser")),
            ),
        },
        f"{API}/users/{{username}}": {
            "delete": _op(
                "Delete an account (never the last admin)",
                "auth",
                None,
                errors=(400, 404, 409),
                status=204,
                parameters=[user],
            )
        },
        f"{API}/users/{{username}}/password": {
            "post": _op(
                "Set a password: one's own with current_password, anyone's as admin",
                "auth",
                None,
                errors=(400, 404, 429),
                status=204,
                parameters=[user],
                requestBody=_body(_ref("PasswordChange")),
            )
        },
    }


def _token_paths() -> dict:
    return {
        f"{API}/tokens": {
            "get": _op(
                "Every API token (never its secret)",
                "auth",
                _ref("TokenList"),
                errors=(),
            ),
            "post": _op(
                "Make an API token; the answer is the only place it appears",
                "auth",
                _ref("NewToken"),
                errors=(400, 409),
                status=201,
                requestBody=_body(_closed({"name": NAME, "role": ROLE})),
            ),
        },
        f"{API}/tokens/{{name}}": {
            "delete": _op(
                "Revoke an API token",
                "auth",
                None,
                errors=(404,),
                status=204,
                parameters=[_path("name", "The token's name")],
            )
        },
    }


NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{2,31}$"}
ROLE = {"type": "string", "enum": ["coowner", "technician", "admin"]}
SECRET = {"type": "string", "minLength": 1, "writeOnly": True}
# The server also refuses a password equal to the username.
NEW_PASSWORD = {
    "type": "string",
    "minLength": 10,
    "maxLength": 1024,
    "writeOnly": True,
}


def _auth_schemas() -> dict[str, Schema]:
    # Names are lower-cased and trimmed by the server, so input is laxer than NAME;
    # a login with any name is simply refused.
    new_name = {"type": "string", "pattern": r"^\s*[A-Za-z0-9][A-Za-z0-9._-]{2,31}\s*$"}
    given_name = {"type": "string", "minLength": 1}
    return {
        "Credentials": _closed({"username": given_name, "password": SECRET}),
        "Setup": _closed(
            {"code": SECRET, "username": new_name, "password": NEW_PASSWORD}
        ),
        "NewUser": _closed(
            {"username": new_name, "password": NEW_PASSWORD, "role": ROLE}
        ),
        # An admin resetting someone else's password sends no current one.
        "PasswordChange": _closed(
            {"password": NEW_PASSWORD},
            {"current_password": {"type": "string", "writeOnly": True}},
        ),
        "Session": _closed({"user": NAME, "role": ROLE, "csrf_token": STR}),
        "TokenCaller": _closed(
            {"user": NAME, "role": ROLE, "via": {"type": "string", "enum": ["token"]}}
        ),
        "User": _closed({"username": NAME, "role": ROLE}),
        "UserList": _closed({"users": {"type": "array", "items": _ref("User")}}),
        "Token": _closed({"name": NAME, "role": ROLE, "created_ms": INT}),
        "TokenList": _closed({"tokens": {"type": "array", "items": _ref("Token")}}),
        "NewToken": _closed({"name": NAME, "role": ROLE, "token": STR}),
    }
