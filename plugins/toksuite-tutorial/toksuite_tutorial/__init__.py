"""A minimal toksuite plugin: the `pixels-grey4` encoder (see grey4.py)."""
