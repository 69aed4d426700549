"""The provider-call use case shared by jobs, `ai.generate` nodes and the execute routes."""
