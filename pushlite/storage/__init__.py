"""Redis storage shared by the web app and the workers (no Flask here)."""
