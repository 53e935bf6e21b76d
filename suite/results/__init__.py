"""Results: records on disk, their checks, cells and statistics, comparison tables, scores and studies.
Nothing here imports torch: results are read on any laptop."""
