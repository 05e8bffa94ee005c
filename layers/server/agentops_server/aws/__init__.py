"""The AWS adapters of the server layer: every module that talks to DynamoDB, S3 or KMS (docs/architecture.md)."""
