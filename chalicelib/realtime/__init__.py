"""Real-time delivery: chat events derived from the table's stream, pushed to
websocket connections and put on an EventBridge bus."""
