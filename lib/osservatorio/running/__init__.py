"""Running: open a stage in a notebook, execute a theme's notebooks with papermill,
batches in parallel processes or on a Dask cluster, provenance of every run."""
