"""Leak and anomaly detection: rules, models, evaluation."""
