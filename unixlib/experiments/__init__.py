"""What a notebook runs: stage runs, the evaluation pipeline, table and figure data, ablations,
the dry run, model export, the papermill series runner and the book. Uses every layer below it."""
