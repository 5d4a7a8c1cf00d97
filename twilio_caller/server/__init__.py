"""The background server: webhook, control API, runner and the clients that find it."""
