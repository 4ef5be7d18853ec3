"""Screener pseudo-colour of DEBISim's dual-spectrum radiographs, calibrated for the run's two spectra.

DEBISim's images are polychromatic line integrals A_s = -ln(sum_E w_s(E) exp(-sum mu(E) l)) (normalised,
~0 in air) of an energy-integrating detector, w_s(E) = S_s(E) E for spectrum s. Its two default spectra
are both 160 kVp (mean energies 55.8 and 58.8 keV), so the ratio r = A_1 / A_2 moves over a few per cent
between organics and steel, where the built-in simulator's 40/80 keV ratio R moves from 1.25 to 6.1.
The colour mapping is the simulator's (`baggan.data.xray.render.colour_attenuation`); what is calibrated
is the translation of (A_1, A_2) onto its scale:

1. For four reference materials (polyethylene, water, aluminium, steel; compositions and densities of
   `baggan.data.xray.materials`) the polychromatic A_1(t), A_2(t) are computed over thickness t from the
   spectra and the materials' attenuation curves (NIST XCOM mu/rho at 10-150 keV, log-log interpolated).
   That gives each reference's ratio as a function of A_2, r_m(A_2): beam hardening included, as in a
   scanner's intensity-dependent classification curves.
2. A pixel's ratio r is mapped piecewise-linearly through the four anchors (r_m(A_2), R_m), with R_m the
   material's 40/80 keV ratio in the simulator; beyond the end anchors the end segments are extended.
3. Brightness: A'_hi = A_2 mu_80(water) / mu_2(water) (the same water thickness is as dark as in the
   simulator), A'_lo = R A'_hi. Where spectrum 1 is within 1.5 of its ceiling ln(dose gain sum w) (photon
   starvation) the pixel turns to metal, as in the simulator.

With one spectrum there is no material information: the scan is grey, 255 exp(-D(A'_hi)), with the
simulator's display density D.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baggan.data.xray.materials import MATERIALS, Material
from baggan.data.xray.render import colour_attenuation, display_density, starvation
from baggan.errors import DataError

KEV = np.arange(10, 161, dtype=np.float64)  # DEBISim's energy grid: 10..160 keV in 1 keV steps

# NIST SRD 126 (XCOM) mass attenuation coefficients mu/rho (cm^2/g, coherent scattering included) of the
# elements of the reference materials, at the table's energies.
_NIST_KEV = np.array([10, 15, 20, 30, 40, 50, 60, 80, 100, 150], np.float64)
_NIST_ELEMENTS = {
    "H": (0.3854, 0.3764, 0.3695, 0.3570, 0.3458, 0.3355, 0.3260, 0.3091, 0.2944, 0.2651),
    "C": (2.373, 0.8071, 0.4420, 0.2562, 0.2076, 0.1871, 0.1753, 0.1610, 0.1514, 0.1347),
    "O": (5.952, 1.836, 0.8651, 0.3779, 0.2585, 0.2132, 0.1907, 0.1678, 0.1551, 0.1361),
    "Al": (26.23, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378),
    "Fe": (170.6, 57.08, 25.68, 8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964),
}
# Reference materials: name in baggan.data.xray.materials, elemental composition by mass.
REFERENCES = {
    "plastic": (("C", 0.8563), ("H", 0.1437)),  # polyethylene (CH2)n
    "water": (("H", 0.1119), ("O", 0.8881)),
    "aluminium": (("Al", 1.0),),
    "steel": (("Fe", 1.0),),
}
# DEBISim's default two-view source: 2.2752e7 photons per spectrum and a detector gain of 0.0025.
DEFAULT_DOSE, DEFAULT_GAIN = 2.2752e7, 0.0025
# Mean photon energies of DEBISim's example_spectrum_160kV_1 and _2 (what the built-in spectra match).
DEFAULT_MEAN_KEV = (55.80, 58.80)
_PRIOR_K = 0.03  # pulls nearly empty pixels towards the organic end (as the simulator's ratio prior)


def mass_attenuation(composition: tuple[tuple[str, float], ...]) -> np.ndarray:
    """mu/rho (cm^2/g) on KEV of a mixture of the NIST elements above (log-log interpolation, mixture rule)."""
    total = np.zeros_like(KEV)
    for element, w in composition:
        logs = np.log(np.asarray(_NIST_ELEMENTS[element]))
        slope = (logs[-1] - logs[-2]) / (np.log(_NIST_KEV[-1]) - np.log(_NIST_KEV[-2]))
        inner = np.interp(np.log(KEV), np.log(_NIST_KEV), logs)
        beyond = logs[-1] + slope * (np.log(KEV) - np.log(_NIST_KEV[-1]))  # extends the last segment past 150
        total += w * np.exp(np.where(KEV > _NIST_KEV[-1], beyond, inner))
    return total / sum(w for _, w in composition)


def _material(name: str) -> Material:
    """The simulator's material of that name."""
    return next(m for m in MATERIALS if m.name == name)


def reference_mu(name: str) -> np.ndarray:
    """Linear attenuation (per mm, on KEV) of a reference material at its density in the simulator."""
    return mass_attenuation(REFERENCES[name]) * _material(name).density * 0.1


def kramers_spectrum(mean_kev: float, kvp: float = 160.0) -> np.ndarray:
    """A photon spectrum on KEV: Kramers' (kVp - E) / E behind the aluminium filter that gives `mean_kev`."""
    base = np.clip(kvp - KEV, 0.0, None) / KEV
    mu_al = mass_attenuation(REFERENCES["aluminium"]) * _material("aluminium").density * 0.1  # per mm

    def mean(t: float) -> float:
        s = base * np.exp(-mu_al * t)
        return float((s * KEV).sum() / s.sum())

    lo, hi = 0.0, 200.0
    if not mean(lo) <= mean_kev <= mean(hi):
        raise ValueError(f"no aluminium filter gives a mean energy of {mean_kev} keV at {kvp} kVp")
    for _ in range(60):  # bisection on the filter thickness (mm)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean(mid) < mean_kev else (lo, mid)
    s = base * np.exp(-mu_al * (lo + hi) / 2)
    return s / s.sum()


def read_spectrum(path: str | Path) -> np.ndarray:
    """A DEBISim spectrum file (rows 'keV weight', as include/spectra/*.txt) as weights on KEV."""
    path = Path(path)
    try:
        table = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a spectrum file (two numeric columns keV, weight): {e}") from None
    if table.shape[1] != 2 or not len(table):
        raise DataError(f"{path}: not a spectrum file: expected two columns (keV, weight), got {table.shape[1]}")
    kev, weight = table[:, 0], table[:, 1]
    if not np.all(np.isfinite(table)) or (weight < 0).any() or weight.sum() <= 0:
        raise DataError(f"{path}: spectrum weights must be finite, >= 0 and not all 0")
    if kev.min() < KEV[0] or kev.max() > KEV[-1] or np.any(kev != np.round(kev)):
        raise DataError(f"{path}: energies must be whole keV in [10, 160] (DEBISim's grid)")
    out = np.zeros_like(KEV)
    np.add.at(out, (kev - KEV[0]).astype(int), weight)
    return out / out.sum()


def line_integral(weights: np.ndarray, mu: np.ndarray, thickness: np.ndarray) -> np.ndarray:
    """Polychromatic -ln transmission of an energy-integrating detector (weights w(E) = S(E) E) through
    `thickness` (mm, any shape) of a material with linear attenuation `mu` (per mm, on KEV)."""
    w = weights * KEV
    w = w / w.sum()
    t = np.asarray(thickness, np.float64)[..., None]
    return -np.log(np.exp(-mu * t) @ w)


@dataclass(frozen=True)
class Calibration:
    """The translation of one run's (A_1, A_2) onto the simulator's colour scale (module docstring)."""

    a_grid: np.ndarray    # A_2 values of the anchor tables
    anchors: np.ndarray   # [4, len(a_grid)]: each reference's A_1/A_2 at that A_2
    targets: np.ndarray   # [4]: each reference's 40/80 keV ratio in the simulator
    brightness: float     # A'_hi per unit of A_2 (water matched)
    ceiling: float        # ln of spectrum 1's total counts: A_1 cannot exceed it

    def hue_ratio(self, a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
        """The simulator-scale ratio R of each pixel (piecewise linear through the anchors at its A_2)."""
        a2c = np.clip(a2, 0.0, None)
        r = (np.clip(a1, 0.0, None) + _PRIOR_K * self.anchors[0, 0]) / (a2c + _PRIOR_K)
        ref = [np.interp(a2c, self.a_grid, row).astype(np.float32) for row in self.anchors]
        out = np.empty_like(r)
        for k in range(len(ref) - 1):  # segment k covers r below anchor k+1 (the first and last extend)
            sel = r < ref[k + 1] if k < len(ref) - 2 else np.ones(r.shape, bool)
            if k > 0:
                sel &= r >= ref[k]
            span = np.maximum(ref[k + 1] - ref[k], 1e-6)
            seg = self.targets[k] + (r - ref[k]) / span * (self.targets[k + 1] - self.targets[k])
            out[sel] = seg[sel]
        return np.clip(out, 0.5, 20.0)

    def colour(self, a1: np.ndarray, a2: np.ndarray, contrast: float = 1.0, smooth_px: float = 0.0) -> np.ndarray:
        """RGB uint8 pseudo-colour of the two spectra's line integrals (HxW each)."""
        a_hi = (np.clip(a2, 0.0, None) * self.brightness).astype(np.float32)
        a_lo = (self.hue_ratio(a1, a2) * a_hi).astype(np.float32)
        return colour_attenuation(a_lo, a_hi, starvation(a1, -self.ceiling).astype(np.float32), contrast,
                                  smooth_px)

    def grey(self, a: np.ndarray, contrast: float = 1.0) -> np.ndarray:
        """RGB uint8 grey scan of one spectrum's line integrals (no material information)."""
        v = np.exp(-display_density(np.clip(a, 0.0, None) * self.brightness, contrast))
        return np.repeat(np.clip(v * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def calibrate(spectra: tuple[np.ndarray, ...], dose: float = DEFAULT_DOSE, gain: float = DEFAULT_GAIN) -> Calibration:
    """The calibration for spectra (weights on KEV; one or two) of a run (module docstring)."""
    a_grid = np.linspace(0.0, 16.0, 321)
    thick = np.concatenate([[0.0], np.logspace(-3, 3.5, 400)])  # mm
    last = spectra[-1]
    anchors, targets = [], []
    for name in REFERENCES:
        mu = reference_mu(name)
        first = spectra[0]
        a1, a2 = line_integral(first, mu, thick), line_integral(last, mu, thick)
        ratio = np.empty_like(a2)
        ratio[1:] = a1[1:] / a2[1:]
        ratio[0] = (mu @ (first * KEV) / (first * KEV).sum()) / (mu @ (last * KEV) / (last * KEV).sum())
        anchors.append(np.interp(a_grid, a2, ratio))
        lo, hi = _material(name).mu_rho
        targets.append(lo / hi)
    water = reference_mu("water")
    mu2 = water @ (last * KEV) / (last * KEV).sum()
    brightness = _material("water").mu_rho[1] * _material("water").density * 0.1 / mu2
    ceiling = float(np.log(dose * gain * (spectra[0] * KEV).sum()))
    return Calibration(a_grid, np.array(anchors), np.array(targets), float(brightness), ceiling)


def default_spectra(n: int) -> tuple[np.ndarray, ...]:
    """Built-in stand-ins for DEBISim's example 160 kV spectra (the first n): Kramers spectra filtered to
    their mean energies (DEFAULT_MEAN_KEV)."""
    return tuple(kramers_spectrum(m) for m in DEFAULT_MEAN_KEV[:n])


__all__ = ["KEV", "REFERENCES", "Calibration", "calibrate", "mass_attenuation", "reference_mu", "kramers_spectrum",
           "read_spectrum", "line_integral", "default_spectra", "DEFAULT_DOSE", "DEFAULT_GAIN"]
