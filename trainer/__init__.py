"""The trainer node: pulls training jobs from NATS JetStream, trains with torch, writes to S3."""
