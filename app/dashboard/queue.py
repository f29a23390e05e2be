"""The staff certificate queue (COI / WOS / POI requests)."""
