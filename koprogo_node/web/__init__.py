"""Local web dashboard and JSON API."""
