"""What operators see: Prometheus metrics, JSON logs with request ids, optional tracing."""
