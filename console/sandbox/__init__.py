"""The local sandbox: a real Kafka-protocol broker, a Dapr-API dev sidecar per service, and a supervisor."""
