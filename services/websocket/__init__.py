"""Real-time sync: consumes task-updates and pushes each user's changes to their WebSocket clients.

Scaling out: the Subscription delivers through the `kafka-pubsub` component, whose consumer
group is `{appID}`, so all websocket replicas share one consumer group and each update reaches
ONE replica, while a user's browser may be connected to another: with several replicas, some
clients would miss updates (they get a `resync` on reconnect at worst, never a wrong update).
Run one replica (the default here), or make every replica receive every update:
- a dedicated pub/sub Component for this app with `consumerGroup: "{podName}"` (daprd fills in
  the pod name, so each replica is its own consumer group and reads every partition), with the
  websocket Subscription pointing at it; resume buffers stay per replica, so a client that
  reconnects to another replica is told to resync; or
- keep one group, and let the replica that receives an update re-broadcast it (for example
  through a state-store-backed per-user log that every replica polls), at the cost of latency.
"""
