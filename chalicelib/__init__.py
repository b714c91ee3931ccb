"""The VoIPBIN chat service: HTTP API, storage, stream fan-out."""
