"""Workflows: definitions (DAGs of nodes) and durable runs executed through the work queue."""
