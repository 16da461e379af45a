"""Models of alerting: rule overrides, incidents, silences, channels and deliveries."""
