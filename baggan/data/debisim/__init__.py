"""DEBISim run folders (the paper's authors' dual-energy baggage simulator) -> the toolkit's COCO format.

`files` (layout, FITS, restricted metadata unpickling), `geometry` (two-view scanners, label projection),
`colour` (pseudo-colour calibrated for the run's spectra), `prepare` (`baggan prepare debisim`).
"""
