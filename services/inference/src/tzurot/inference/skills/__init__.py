"""Skills: what a personality can do besides answering (see loop.py for the tool loop)."""
