"""Languages: which one a visitor gets, Belgian formats, complete catalogs."""

import ast
import inspect
import re
from importlib import resources

import pytest

from koprogo_node.detect import rules, service
from koprogo_node.detect.alerts import STATES
from koprogo_node.web import comparison, history, pages, settings_api
from koprogo_node.web.auth import Role
from koprogo_node.web.i18n import Translator, catalog, negotiate

TEMPLATE_TEXT = re.compile(r"""_\((?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("nl", "fr", "en", "nl"),  # an explicit switch wins
        (None, "en", "nl-BE,nl;q=0.9", "en"),  # then the remembered choice
        (None, None, "de-DE, nl-BE;q=0.8, fr;q=0.5", "nl"),  # then the browser
        (None, None, "fr;q=0.2, en;q=0.9", "en"),  # by weight, not by order
        (None, None, "de, it", "fr"),  # none we speak: French
        ("xx", "yy", "", "fr"),  # junk is ignored, not an error
        (None, None, "en;q=zero, nl", "nl"),
    ],
)
def test_language_is_negotiated_in_order(query, cookie, accept, expected):
    assert expected == negotiate(query, cookie, accept)


def test_numbers_and_dates_use_belgian_formats():
    """fr-BE groups with a narrow space, nl-BE with a dot; both use a comma."""
    ts = 1_796_387_100  # 2026-12-04 12:25 UTC, 13:25 in Brussels

    assert "1\u202f234,5" == Translator("fr").number(1234.5)
    assert "1.234,5" == Translator("nl").number(1234.5)
    assert "4/12/26 13:25" == Translator("fr").moment(ts)
    assert "4/12/2026, 13:25" == Translator("nl").moment(ts)
    assert "–" == Translator("en").number(None)


def test_texts_are_translated_and_filled_in():
    assert "Aperçu" == Translator("fr")("Overview")
    assert "3 peers verbonden" == Translator("nl")("{n} peers connected", n=3)
    assert "Overview" == Translator("en")("Overview")  # English texts are keys
    assert "not in any catalog" == Translator("nl")("not in any catalog")


def _texts_shown() -> set[str]:
    """Every text the templates, the page script and the menus can show."""
    folder = resources.files("koprogo_node.web") / "templates"
    found = set()
    for template in folder.iterdir():
        for double, single in TEMPLATE_TEXT.findall(template.read_text()):
            found.add(double or single)
    found |= {label for _, label in pages.NAV} | set(pages.SCRIPT_TEXTS)
    found |= {role.label for role in Role} | set(STATES) | set(pages.ALERT_KINDS)
    found |= {"counter", "gauge", "No data in this period"}
    found |= {"electricity, kW", "water, L/min"}  # the overview chart's series
    found |= {template for template in _explanation_templates()}
    found |= set(comparison.FAMILIES) | set(comparison.SIMILARITY)
    found |= set(history.TIERS) | {spec[3] for spec in settings_api.FIELDS.values()}
    return found


def _explanation_templates() -> set[str]:
    """The English templates of every rule's one-sentence explanation."""
    found = set()
    for module in (rules, service):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "explained"
            ):
                found.add(ast.literal_eval(node.args[0]))
    return found


def test_every_rule_explanation_is_found():
    assert len(_explanation_templates()) == 12


@pytest.mark.parametrize("language", ["fr", "nl"])
def test_explanations_read_in_the_pages_language(language):
    finding = rules.ContinuousFlow(window_h=24).explain()
    evidence = {
        "explanation": finding["explanation"],
        "explanation_template": finding["explanation_template"],
        "explanation_values": dict(finding["explanation_values"]),
    }

    translated = Translator(language).explain(evidence)

    assert "24" in translated and translated != finding["explanation"]
    assert finding["explanation"] == Translator("en").explain(evidence)
    assert "as stored" == Translator(language).explain({"explanation": "as stored"})


@pytest.mark.parametrize("language", ["fr", "nl"])
def test_every_text_shown_has_a_translation(language):
    missing = _texts_shown() - set(catalog(language))

    assert missing == set()


def test_identifiers_shown_as_words_read_as_english():
    words = set(pages.ALERT_KINDS) | set(comparison.FAMILIES) | {"lots_band", "coowner"}

    assert words - set(catalog("en")) == set()
    assert "Sustained water flow" == Translator("en")("sustained_flow")


@pytest.mark.parametrize("language", ["fr", "nl", "en"])
def test_translations_keep_their_placeholders(language):
    """A translation that drops {n} would show a sentence without its number."""
    for english, translated in catalog(language).items():
        assert set(re.findall(r"{\w+(?::\w+)?}", english)) == set(
            re.findall(r"{\w+(?::\w+)?}", translated)
        ), english
