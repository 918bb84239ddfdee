"""Returns that arrive without a channel API: entered by hand, imported from a file, posted to a webhook, and the
parcels they travel in."""
