"""Cross-framework comparison: parity of one update on the same weights and batch."""
