"""What a notebook runs: pipelines, table data, ablations, dry run, export, and the book."""
