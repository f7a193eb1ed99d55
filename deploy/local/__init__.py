"""The local stack: embedded NATS and S3 servers plus every service as a detached process."""
