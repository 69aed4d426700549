"""Prometheus metrics: definitions, the scrape body and the HTTP middleware."""
