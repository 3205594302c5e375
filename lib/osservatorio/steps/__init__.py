"""Notebook steps: each function is one cell of a stage notebook.

A step reads what it needs from the stage context (sources, run folder), calls the
pure computations in ``osservatorio.indicators``, ``selection``, ``evaluate`` and
``synthesis``, displays the result in the theme's language through
``osservatorio.show``, and writes what later stages need into the run folder.
"""
