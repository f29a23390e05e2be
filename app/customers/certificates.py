"""Customer page, "Certificates" tab: issued certificates, resend, POI, internal requests."""
