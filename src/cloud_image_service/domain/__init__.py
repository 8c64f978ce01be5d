"""The domain: image records, their lifecycle rules, verification of bytes, pagination.

Nothing here imports FastAPI or boto3; the stores are reached through `ports`.
"""
