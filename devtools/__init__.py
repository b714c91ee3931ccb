"""Running the service on a laptop: embedded DynamoDB, stream poller, local server."""
