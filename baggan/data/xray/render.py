"""Physics of a dual-energy line scanner and the screeners' pseudo-colour mapping.

Per pixel, with M_m the mass thickness (g/cm^2) of material m along the ray:

    A_E = sum_m (mu/rho)_m(E) * M_m                       (E = 40 keV low, 80 keV high)
    A_E <- G_det * A_E                                      detector blur (Gaussian PSF, see below)
    T_E = exp(-A_E)                                         Beer-Lambert
    T_E <- T_E + s * G_sc * (1 - T_E)                       scatter haze (optional, s = `scatter`)
    N_E ~ Poisson(N0 * T_E),  T_E = clip(N_E, 1, N0) / N0   photon noise, transmission in (0, 1]

The detector blur acts on the line integrals rather than on the transmissions: for a PSF of a pixel or
less the two agree except at the edges of thick metal, where blurring transmissions mixes an opaque and a
clear pixel into a grey one whose two energies match (an orange fringe). Blurs below 0.25 px are skipped.

Colour: A'_E = -ln T_E; the ratio R = (A'_lo + k r0) / (A'_hi + k) tracks the effective atomic number
(organics ~1.3-1.5, glass/aluminium/PVC ~2.3-3.2, steel/copper/batteries >5); k = 0.03 pulls nearly
empty pixels towards the organic ratio r0 = 1.35 instead of amplifying noise. R gives a hue coordinate
z in [0, 2] (0 organic, 1 inorganic, 2 metal). As in scanners' intensity-dependent classification
curves, a metal ratio only reads as metal once A'_hi is large enough (ramp 0.25..0.9): thin wires and
cables come out green, as PIDRay's scanner shows them, dense metal blue. Where the low energy is nearly
stopped (A'_lo within 1.5 of its ceiling -ln(1/N0 + scatter)) both energies approach the same ceiling,
the ratio tends to 1 and would read as organic, so z ramps to metal (an opaque object is dense metal).
z selects a per-channel absorption vector a(z) (orange, green and blue families, interpolated) and

    RGB = exp(-D a(z)),  D = c A'_hi / (1 + c A'_hi / 3)      (c = `contrast`; display compression)

so empty pixels are white, thin organics pale orange darkening to brown, inorganics green to dark green,
metals blue to near-black; where items overlap the ratio, and so the colour, mixes.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from baggan.data.xray.materials import linear_coefficients

# Hue coordinate z: 0 at R <= 1.5, 1 on [2.1, 3.3], 2 at R >= 4.3, linear in between.
_R_KNOTS = (1.50, 2.10, 3.30, 4.30)
# Absorption vectors (R, G, B) for organic, inorganic, metal.
_ABSORB = np.array([[0.25, 0.80, 1.95],
                    [1.62, 0.66, 1.50],
                    [2.10, 1.44, 0.74]], np.float32)
_PRIOR_K, _PRIOR_R = 0.03, 1.35
_METAL_A = (0.25, 0.9)  # A'_hi over which a metal ratio turns from inorganic green to metal blue
_SATURATION = 3.0  # display compression of the attenuation: D = cA / (1 + cA / 3)


def attenuation(mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line integrals A_lo, A_hi (HxW float32) from per-material mass thickness (K x H x W, g/cm^2)."""
    lo, hi = linear_coefficients()
    k, h, w = mass.shape
    flat = mass.reshape(k, -1)
    return (lo @ flat).reshape(h, w), (hi @ flat).reshape(h, w)


def material_map(mass: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Per-pixel material id (1-based, 0 = air): the material with the largest high-energy attenuation."""
    _, hi = linear_coefficients()
    best = np.full(mass.shape[1:], threshold, np.float32)
    ids = np.zeros(mass.shape[1:], np.uint8)
    c = np.empty_like(best)
    sel = np.empty(best.shape, bool)
    for k in range(mass.shape[0]):
        np.multiply(mass[k], hi[k], out=c)
        np.greater(c, best, out=sel)
        ids[sel] = k + 1
        np.maximum(best, c, out=best)
    return ids


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with sigma in pixels (identity below 0.25 px; wide kernels run on a reduced image)."""
    if sigma_px < 0.25:
        return img
    f = int(sigma_px // 4)
    if f < 2:
        return cv2.GaussianBlur(img, (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT)
    h, w = img.shape
    small = cv2.resize(img, (max(w // f, 1), max(h // f, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / f, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def measure(a: np.ndarray, photons: float, blur_px: float, scatter: float, scatter_px: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Measured transmission in (0, 1] of line integrals `a` (detector blur, scatter, photon noise), and the
    floor below which nothing can be measured (one photon plus the scatter reaching the pixel)."""
    t = np.exp(-_blur(a, blur_px)).astype(np.float32)
    floor = np.full_like(t, 1.0 / photons)
    if scatter > 0:
        haze = scatter * _blur(1.0 - t, scatter_px)
        t += haze
        floor += haze
    lam = t * np.float32(photons)
    counts = lam + np.sqrt(lam) * rng.standard_normal(lam.shape, dtype=np.float32)
    low = lam < 50.0  # exact Poisson where the normal approximation would be poor
    if low.any():
        counts[low] = rng.poisson(lam[low])
    np.clip(counts, 1.0, photons, out=counts)
    return counts * np.float32(1.0 / photons), floor


def hue_coordinate(a_lo: np.ndarray, a_hi: np.ndarray) -> np.ndarray:
    """z in [0, 2] (0 organic, 1 inorganic, 2 metal) from the low/high attenuation ratio and, for metal,
    the attenuation (thin metal reads as inorganic)."""
    r = (a_lo + np.float32(_PRIOR_K * _PRIOR_R)) / (a_hi + np.float32(_PRIOR_K))
    k = _R_KNOTS  # piecewise linear: 0 below k0, 1 on [k1, k2], 2 above k3
    inorganic = np.clip((r - k[0]) * np.float32(1 / (k[1] - k[0])), 0.0, 1.0)
    metal = np.clip((r - k[2]) * np.float32(1 / (k[3] - k[2])), 0.0, 1.0)
    metal *= np.clip((a_hi - _METAL_A[0]) * np.float32(1.0 / (_METAL_A[1] - _METAL_A[0])), 0.0, 1.0)
    return inorganic + metal


_Z_LEVELS, _A_STEP, _A_LEVELS = 129, 0.01, 1501


@functools.lru_cache(maxsize=8)
def _colour_table(contrast: float) -> np.ndarray:
    """RGB uint8 for every (z, A'_hi) cell: z in 128 steps over [0, 2], A'_hi in steps of 0.01 up to 15."""
    z = np.linspace(0.0, 2.0, _Z_LEVELS, dtype=np.float32)[:, None, None]
    w1, w2 = np.clip(z, 0, 1), np.clip(z - 1, 0, 1)
    absorb = _ABSORB[0] * (1 - w1) + _ABSORB[1] * (w1 - w2) + _ABSORB[2] * w2  # (Z, 1, 3)
    a = (np.arange(_A_LEVELS, dtype=np.float32) * _A_STEP)[None, :, None]
    rgb = np.exp(-display_density(a, contrast) * absorb)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(-1, 3)


def display_density(a: np.ndarray, contrast: float = 1.0) -> np.ndarray:
    """The displayed optical density D = c A / (1 + c A / 3) of an attenuation A (module docstring)."""
    ca = contrast * a
    return ca / (1.0 + ca / _SATURATION)


def starvation(a_lo: np.ndarray, log_floor_lo: np.ndarray | float) -> np.ndarray:
    """In [0, 1]: how nearly the low energy is stopped (A'_lo within 1.5 of its ceiling -ln floor)."""
    return np.clip(a_lo + log_floor_lo + 1.5, 0.0, 1.0)


def colour_attenuation(a_lo: np.ndarray, a_hi: np.ndarray, starved: np.ndarray, contrast: float = 1.0,
                       smooth_px: float = 0.0) -> np.ndarray:
    """RGB uint8 image from low/high line integrals on this module's 40/80 keV scale and the starvation
    (`starvation`) of the low energy: hue from the ratio, brightness from A'_hi (module docstring)."""
    z = hue_coordinate(_blur(a_lo, smooth_px), _blur(a_hi, smooth_px))
    z += (2.0 - z) * starved
    zi = (z * ((_Z_LEVELS - 1) / 2.0) + 0.5).astype(np.int32)
    ai = np.clip(a_hi * (1.0 / _A_STEP) + 0.5, 0, _A_LEVELS - 1).astype(np.int32)
    return np.take(_colour_table(float(contrast)), zi * _A_LEVELS + ai, axis=0)


def pseudo_colour(t_lo: np.ndarray, t_hi: np.ndarray, floor_lo: np.ndarray, contrast: float = 1.0,
                  smooth_px: float = 0.0) -> np.ndarray:
    """RGB uint8 image from measured low/high transmissions and the low-energy floor (module docstring)."""
    a_lo = -np.log(t_lo)
    return colour_attenuation(a_lo, -np.log(t_hi), starvation(a_lo, np.log(floor_lo)), contrast, smooth_px)


__all__ = ["attenuation", "material_map", "measure", "hue_coordinate", "display_density", "starvation",
           "colour_attenuation", "pseudo_colour"]
