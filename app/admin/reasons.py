"""Configuration: COI rejection reasons and the agency (producer) printed on certificates."""
