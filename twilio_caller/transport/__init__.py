"""Call transports: the port (the neutral language of a call) and its implementations."""
