"""Certificates of insurance: intake, processing, PDF."""
