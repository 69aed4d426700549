"""Code workers: processes on the user's own machines that run workflow steps."""
