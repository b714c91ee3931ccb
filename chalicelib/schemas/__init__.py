"""Pydantic models: request bodies, resources, and the OpenAPI document's source."""
