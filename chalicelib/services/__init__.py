"""Business rules and authorization. No HTTP here; storage through chalicelib.storage."""
