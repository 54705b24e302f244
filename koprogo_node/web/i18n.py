"""The dashboard's languages: French, Dutch and English, with Belgian formats.

The language comes from `?lang=` (remembered in a cookie), then the cookie,
then the browser's Accept-Language, then French. Texts are keyed by their
English wording; `locales/fr.json` and `locales/nl.json` hold the
translations, and a text missing there is shown in English rather than not at
all; `locales/en.json` names the identifiers (alert kinds, families) that
are shown as words. Numbers and dates go through Babel with the Belgian locales, so a
Brussels co-owner reads "1 234,5" and "4/12/26 13:05" and a Ghent one
"1.234,5".
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

LANGUAGES = ("fr", "nl", "en")
DEFAULT = "fr"
COOKIE = "koprogo_lang"
LOCAL_TIME = ZoneInfo("Europe/Brussels")


@functools.cache
def catalog(language: str) -> dict[str, str]:
    """English text → translation for one language.

    English needs one too, for the identifiers shown as words
    ("sustained_flow" → "Sustained water flow").
    """
    folder = resources.files(__package__) / "locales"
    return json.loads((folder / f"{language}.json").read_text(encoding="utf-8"))


def negotiate(query_lang: str | None, cookie: str | None, accept: str) -> str:
    """The language to answer in, by the order the module docstring gives."""
    for chosen in (query_lang, cookie):
        if chosen in LANGUAGES:
            return chosen
    for language in _accepted(accept):
        if language in LANGUAGES:
            return language
    return DEFAULT


def _accepted(header: str) -> list[str]:
    """Primary language tags of an Accept-Language header, best first."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


@dataclass(frozen=True)
class Translator:
    """Texts and formats for one language; templates call it as `_`."""

    language: str

    @property
    def locale(self) -> str:
        """The Babel locale: the language as spoken in Belgium."""
        return f"{self.language}_BE"

    def __call__(self, text: str, **values) -> str:
        translated = catalog(self.language).get(text, text)
        return translated.format(**values) if values else translated

    def number(self, value: float | None, digits: int = 1) -> str:
        """A number with the locale's separators, or a dash when unknown."""
        if value is None:
            return "–"
        return format_decimal(round(value, digits), locale=self.locale)

    def moment(self, ts_s: float | None, width: str = "short") -> str:
        """A Unix time as a Belgian local date and time."""
        if ts_s is None:
            return "–"
        local = datetime.fromtimestamp(ts_s, LOCAL_TIME)
        return format_datetime(local, width, tzinfo=LOCAL_TIME, locale=self.locale)

    def pattern(self, ts_s: float, pattern: str) -> str:
        """A Unix time in Belgian local time, in a CLDR pattern such as "EEE d"."""
        local = datetime.fromtimestamp(ts_s, LOCAL_TIME)
        return format_datetime(local, pattern, tzinfo=LOCAL_TIME, locale=self.locale)

    def explain(self, evidence: dict) -> str:
        """A rule's explanation in this language, or as stored if untranslated.

        Alerts stored before explanations carried their template keep their
        English sentence.
        """
        template = evidence.get("explanation_template")
        translated = catalog(self.language).get(template) if template else None
        if translated is None:
            return evidence.get("explanation", "")
        try:
            return translated.format(**evidence.get("explanation_values", {}))
        except (KeyError, ValueError, IndexError):  # a damaged record: say it as stored
            return evidence.get("explanation", "")

    def texts(self, *keys: str) -> dict[str, str]:
        """Translations the page's JavaScript needs, as a dict."""
        return {key: self(key) for key in keys}
