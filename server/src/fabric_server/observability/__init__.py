"""What operators see: Prometheus metrics, structured logs and OpenTelemetry traces."""
