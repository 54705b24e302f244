"""AlertBook transitions and the alert JSON form."""

import json

import pytest

from koprogo_node.detect.alerts import Alert, AlertBook, AlertError, Tariff
from koprogo_node.detect.rules import Finding

H = 3600.0


def leak(severity: str = "medium", sensor: str = "water-1", lph: float = 5.0):
    """A night-flow finding still going on."""
    return Finding(
        kind="night_flow",
        sensor=sensor,
        start_ts=0.0,
        detected_ts=4 * H,
        end_ts=None,
        expected=0.5,
        observed=lph,
        unit="L/h",
        severity=severity,
        litres_per_hour=lph,
    )


def events(transitions):
    """Event names of transitions."""
    return [t.event for t in transitions]


def test_one_open_alert_per_ongoing_problem():
    """The same problem fed hour after hour opens one alert and repeats nothing."""
    book = AlertBook()

    first = book.feed([leak()], 4 * H)
    later = [book.feed([leak()], t * H) for t in range(5, 30)]

    assert ["opened"] == events(first)
    assert all(t == [] for t in later)
    assert 1 == len(book.open_alerts())
    assert 29 * H == book.open_alerts()[0].last_ts


def test_other_sensor_is_another_alert():
    """Two sensors with the same problem make two alerts."""
    book = AlertBook()

    got = book.feed([leak(), leak(sensor="water-2")], 4 * H)

    assert ["opened", "opened"] == events(got)


def test_resolved_after_hold_off_only():
    """The alert resolves once the problem has been absent for the hold-off."""
    book = AlertBook(hold_off_s=24 * H)
    book.feed([leak()], 4 * H)

    assert [] == book.feed([], 27 * H)
    assert ["resolved"] == events(book.feed([], 28 * H))
    assert [] == book.open_alerts()


def test_problem_back_after_resolution_opens_a_new_alert():
    """A new occurrence after resolution is a new alert with its own id."""
    book = AlertBook(hold_off_s=H)
    (opened,) = book.feed([leak()], 0.0)
    book.feed([], 2 * H)

    (again,) = book.feed([leak()], 3 * H)

    assert "opened" == again.event
    assert opened.alert.id != again.alert.id


def test_severity_change_is_an_update():
    """A worse estimate reports one update."""
    book = AlertBook()
    book.feed([leak()], 0.0)

    got = book.feed([leak(severity="high", lph=20)], H)

    assert ["updated"] == events(got)
    assert 20 == got[0].alert.estimate["litres_per_hour"]


def test_estimate_in_euros_at_the_tariff():
    """5 L/h at 4 EUR/m3 costs 0.48 EUR a day."""
    book = AlertBook(tariff=Tariff(eur_per_m3_water=4.0))

    (opened,) = book.feed([leak()], 0.0)

    assert {"litres_per_hour": 5.0, "euros_per_day": 0.48} == opened.alert.estimate


def test_acknowledge_then_resolve_by_id():
    """An open alert can be acknowledged, then resolved, each once."""
    book = AlertBook()
    (opened,) = book.feed([leak()], 0.0)
    alert_id = opened.alert.id

    assert "acknowledged" == book.acknowledge(alert_id, "plumber called").state
    assert [] == book.feed([leak()], H)
    assert "resolved" == book.resolve(alert_id, "valve replaced").state
    with pytest.raises(AlertError, match="already resolved"):
        book.resolve(alert_id)
    with pytest.raises(AlertError, match="only open"):
        book.acknowledge(alert_id)


def test_unknown_id_is_a_clear_error():
    """Acting on an unknown id names it."""
    with pytest.raises(AlertError, match="no alert with id 'nope'"):
        AlertBook().acknowledge("nope")


def test_json_form_round_trips():
    """as_dict is JSON-ready and from_dict rebuilds the same alert."""
    book = AlertBook()
    (opened,) = book.feed([leak()], 0.0)

    data = json.loads(json.dumps(opened.alert.as_dict()))

    assert opened.alert == Alert.from_dict(data)
    assert {
        "expected",
        "observed",
        "unit",
        "explanation",
        "explanation_template",
        "explanation_values",
    } == set(data["evidence"])
    assert "open" == data["state"]


def test_from_dict_refuses_unknown_state():
    """A bad state in stored JSON is an AlertError."""
    data = AlertBook().feed([leak()], 0.0)[0].alert.as_dict() | {"state": "gone"}

    with pytest.raises(AlertError, match="state"):
        Alert.from_dict(data)


def test_a_loss_estimate_that_grows_is_recorded_again():
    """A leak first seen at 17 L/h and then at 50 L/h gives one update."""
    book = AlertBook()
    first = book.feed([_water_finding(17.0)], now_ts=1000.0)
    same = book.feed([_water_finding(18.0)], now_ts=2000.0)
    grown = book.feed([_water_finding(50.0)], now_ts=3000.0)

    assert [t.event for t in first] == ["opened"]
    assert same == []
    assert [t.event for t in grown] == ["updated"]
    assert grown[0].alert.estimate["litres_per_hour"] == 50.0
    assert grown[0].alert.id == first[0].alert.id


def _water_finding(litres_per_hour):
    return Finding(
        kind="sustained_flow",
        sensor="sim.water",
        start_ts=0.0,
        detected_ts=900.0,
        end_ts=None,
        expected=15.0,
        observed=litres_per_hour,
        unit="L/h",
        severity="high",
        litres_per_hour=litres_per_hour,
    )
