"""What a notebook runs: stage runs, the evaluation pipeline, table and figure data, ablations,
the dry run, model export and the papermill series runner. Uses every layer below it."""
