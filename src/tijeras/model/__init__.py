"""Model definitions, configurations, the registry and checkpoint loading."""
