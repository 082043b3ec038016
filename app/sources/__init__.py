"""Sources beyond files: connectors that list items, and the sync that indexes them."""
