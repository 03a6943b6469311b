"""Drift and live-quality statistics, and the prediction store they read."""
