"""Domain services: the work behind the transports (ingest, authentication, change-point
detection, alert settings, notifications, load tests). They use the store and the core, and
know nothing of HTTP or gRPC."""
