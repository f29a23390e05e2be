"""Customer page, "Additional interests" tab: holders, CSV import, mass generation, sent certificates."""
