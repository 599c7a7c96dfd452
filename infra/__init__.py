"""Infrastructure: the Temporal connection and payload codec, logging, metrics and tracing."""
