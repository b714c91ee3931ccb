"""The websocket entry point: API Gateway's $connect, $default and $disconnect."""
