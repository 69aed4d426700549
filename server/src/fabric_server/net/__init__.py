"""Outbound networking shared by every feature that calls URLs given by users."""
