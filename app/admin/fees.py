"""Configuration: WOS and card convenience fees, and the WOS fee report."""
