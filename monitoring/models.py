"""Models of monitoring: collection state and history."""
