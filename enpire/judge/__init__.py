"""The judge: the fixed rules that decide keep/discard and /done (agents propose; the judge decides)."""
