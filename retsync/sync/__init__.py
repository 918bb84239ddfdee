"""Pulling: each channel's pages stored together with the cursor that follows them, in one transaction."""
