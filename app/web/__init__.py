"""The web service: the JSON API, its schemas, the model registry, admission control and security middleware."""
