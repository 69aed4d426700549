"""Webhooks: per-organization endpoints that receive signed copies of domain events."""
