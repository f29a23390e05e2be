"""Public exemption request-link pages (no login: the link's token is the key)."""
