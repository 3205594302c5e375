"""Stage 10, indicators: sources crossed on ISTAT codes, indicators per comune and area,
the governance network, and the theme's analysis panel handed to the later stages."""
