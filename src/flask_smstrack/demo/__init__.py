"""Demo campaigns with realistic clicks, conversions and messages."""
