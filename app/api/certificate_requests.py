"""JSON API: certificate-of-insurance requests (mobile app)."""
