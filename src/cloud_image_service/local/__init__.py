"""Stores that run on a developer's machine: moto inside the service, SeaweedFS, DynamoDB Local."""
