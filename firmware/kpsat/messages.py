"""Topics, state payloads and Home Assistant discovery documents (pure).

One JSON state message per reading goes to `koprogo-sat/<device>/state`,
which sensors/mqtt/koprogo-satellite.toml maps to the node's channels:

    {"ts": 1700000000, "seq": 7, "pulses": 12345, "water": "12.345",
     "water_leak": 0, "temperature": {"28ff4c...": 21.5, "28aa01...": "crc_error"},
     "dropped": 0, "rssi": -61}

The meter total is a decimal string computed from integers: MicroPython on
the ESP32 and RP2040 has single-precision floats, which would round a
large total. A probe without a value carries an error word instead, which
the node records as a reject for that probe's channel, not as a value.
"""

from kpsat.compat import json
from kpsat.settings import METERS

ROOT = "koprogo-sat"
DECIMALS = 6
UNITS = {"m3": "m³", "degC": "°C"}
DEVICE_CLASSES = {"water": "water", "gas": "gas", "import_total": "energy"}


def state_topic(device_id):
    """Where the device's readings go."""
    return ROOT + "/" + device_id + "/state"


def meter_total(count, pulses_per_unit):
    """`count / pulses_per_unit` as a decimal string, exact to DECIMALS places."""
    scaled = count * 10**DECIMALS // pulses_per_unit
    whole, fraction = divmod(scaled, 10**DECIMALS)
    digits = "%d" % fraction
    # MicroPython's str has no rjust or zfill.
    digits = ("0" * (DECIMALS - len(digits)) + digits).rstrip("0")
    return "%d.%s" % (whole, digits or "0")


def record(config, seq, ts, count, leak, temperatures, rssi):
    """One reading as kept in the buffer; None values are left out."""
    entry = {"seq": seq}
    if ts is not None:
        entry["ts"] = ts
    meter = config["meter"]
    if meter is not None:
        entry["pulses"] = count
        channel = METERS[meter["kind"]][0]
        entry[channel] = meter_total(count, meter["pulses_per_unit"])
    if leak is not None:
        entry["water_leak"] = leak
    if temperatures:
        entry["temperature"] = temperatures
    if rssi is not None:
        entry["rssi"] = rssi
    return entry


def state_payload(entry, dropped):
    """The message for a buffered reading, with the drop count as of now."""
    message = dict(entry)
    message["dropped"] = dropped
    return json.dumps(message)


def discovery(config, probes):
    """Retained (topic, payload) pairs announcing every entity to Home Assistant."""
    docs = []
    meter = config["meter"]
    if meter is not None:
        channel, unit = METERS[meter["kind"]]
        docs.append(
            _sensor(config, channel, channel, unit, DEVICE_CLASSES[channel], True)
        )
    if config["leak"] is not None:
        docs.append(_leak(config))
    for probe in probes:
        template = "{{ value_json.temperature['%s'] | float(None) }}" % probe
        oid = "temperature_" + probe
        docs.append(_sensor(config, oid, template, "degC", "temperature", False))
    docs.append(_sensor(config, "dropped", "dropped", "", None, True, True))
    docs.append(_sensor(config, "rssi", "rssi", "dBm", "signal_strength", False, True))
    return [(_config_topic(config, d), json.dumps(d)) for d in docs]


def _sensor(config, oid, value, unit, device_class, counter, diagnostic=False):
    doc = _entity(config, oid, value)
    if unit:
        doc["unit_of_measurement"] = UNITS.get(unit, unit)
    doc["state_class"] = "total_increasing" if counter else "measurement"
    if device_class:
        doc["device_class"] = device_class
    if diagnostic:
        doc["entity_category"] = "diagnostic"
    return doc


def _leak(config):
    doc = _entity(config, "water_leak", "water_leak")
    doc["component"] = "binary_sensor"
    doc["device_class"] = "moisture"
    doc["payload_on"] = "1"
    doc["payload_off"] = "0"
    return doc


def _entity(config, oid, value):
    """The fields every entity shares; `value` is a key or a whole template."""
    device_id = config["device_id"]
    template = value if value.startswith("{{") else "{{ value_json.%s }}" % value
    return {
        "name": oid,
        "unique_id": "koprogo_sat_%s_%s" % (device_id, oid),
        "object_id": "koprogo_sat_%s_%s" % (device_id, oid),
        "state_topic": state_topic(device_id),
        "value_template": template,
        "device": {
            "identifiers": ["koprogo_sat_" + device_id],
            "name": "KoproGo satellite " + device_id,
            "manufacturer": "KoproGo",
            "model": "satellite",
        },
    }


def _config_topic(config, doc):
    component = doc.pop("component", "sensor")
    return "%s/%s/%s/%s/config" % (
        config["discovery_prefix"],
        component,
        config["device_id"],
        doc["name"],
    )
