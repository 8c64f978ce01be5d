"""AWS adapters: every boto3 call lives in this package (S3, DynamoDB, SQS).

Each adapter class receives its client (built once per process by `runtime`) and
translates botocore failures into domain errors at its boundary.
"""
