"""Publishing: what a reviewer reads. Display helpers for the notebooks (in the report's
language), figures and maps, the HTML report of a run, the site and the catalogue."""
