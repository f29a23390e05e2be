"""JSON API: exemption requests and the exemption lookup."""
