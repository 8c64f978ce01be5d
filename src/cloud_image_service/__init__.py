"""Cloud Image Service: presigned S3 image uploads with metadata in DynamoDB."""

__version__ = "0.1.0"
