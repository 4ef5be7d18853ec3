"""The material library: NIST mass attenuation coefficients at the two effective energies.

Values are mu/rho (cm^2/g) from the NIST X-ray mass attenuation tables (J. H. Hubbell and S. M. Seltzer,
NIST Standard Reference Database 126, Tables 3 and 4) at exactly 40 keV (low energy) and 80 keV (high
energy). Mixtures (cellulose, rubber, Li-ion cells, circuit boards) follow the mixture rule
mu/rho = sum_i w_i (mu/rho)_i with mass fractions w_i, which is how XCOM builds compounds away from edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

E_LOW_KEV = 40.0
E_HIGH_KEV = 80.0

# mu/rho in cm^2/g at (40 keV, 80 keV); NIST SRD 126 Table 3 (elements) and Table 4 (compounds).
NIST_MU_RHO = MappingProxyType({
    "H": (0.3458, 0.3091),
    "Li": (0.1551, 0.1356),
    "C": (0.2076, 0.1610),
    "O": (0.2585, 0.1678),
    "Al": (0.5685, 0.2018),
    "Fe": (3.629, 0.5952),
    "Co": (3.981, 0.6414),
    "Cu": (4.862, 0.7630),
    "Pb": (14.36, 2.419),
    "water": (0.2683, 0.1837),
    "adipose": (0.2396, 0.1800),
    "polyethylene": (0.2275, 0.1823),
    "pmma": (0.2350, 0.1751),
    "pvc": (0.7300, 0.2298),
    "pyrex": (0.4341, 0.1890),
})


@dataclass(frozen=True)
class Material:
    """A bulk material: composition by mass fraction of NIST substances and its density (g/cm^3)."""

    name: str
    composition: tuple[tuple[str, float], ...]
    density: float
    note: str

    @property
    def mu_rho(self) -> tuple[float, float]:
        """Mass attenuation coefficients (cm^2/g) at the low and high energy (mixture rule)."""
        total = sum(w for _, w in self.composition)
        lo = sum(w * NIST_MU_RHO[s][0] for s, w in self.composition) / total
        hi = sum(w * NIST_MU_RHO[s][1] for s, w in self.composition) / total
        return lo, hi


_CELLULOSE = (("C", 0.4445), ("H", 0.0622), ("O", 0.4933))  # C6H10O5
_LICOO2 = (("Li", 0.0709), ("Co", 0.6021), ("O", 0.3270))

# Index i+1 in the material map is MATERIALS[i]; 0 means air (nothing in the ray).
MATERIALS: tuple[Material, ...] = (
    Material("textile", _CELLULOSE, 0.35, "cotton/polyester clothing as packed (cellulose, bulk density)"),
    Material("paper", _CELLULOSE, 0.80, "books, documents, cardboard (cellulose)"),
    Material("wood", _CELLULOSE, 0.60, "tool handles, brushes (cellulose)"),
    Material("food", (("adipose", 1.0),), 0.95, "food and soft organics (NIST adipose tissue)"),
    Material("water", (("water", 1.0),), 1.00, "water, drinks, toiletries, liquids"),
    Material("plastic", (("polyethylene", 1.0),), 0.95, "polyethylene/ABS casings, bottles, handles"),
    Material("pvc", (("pvc", 1.0),), 1.38, "PVC: cable insulation, soles, bag panels (chlorine: inorganic)"),
    Material("rubber", (("C", 0.8816), ("H", 0.1184)), 0.93, "rubber grips, wheels, soles (polyisoprene C5H8)"),
    Material("glass", (("pyrex", 1.0),), 2.23, "glass bottles and jars (NIST borosilicate Pyrex)"),
    Material("aluminium", (("Al", 1.0),), 2.699, "aluminium: frames, cans, laptop shells"),
    Material("steel", (("Fe", 1.0),), 7.874, "steel/iron: tools, weapons, zips, springs (NIST iron)"),
    Material("copper", (("Cu", 1.0),), 8.96, "copper and brass: wires, coins, keys, cartridge cases"),
    Material("battery", tuple((s, w * 0.30) for s, w in _LICOO2)
             + (("C", 0.17), ("Cu", 0.13), ("Al", 0.05), ("pmma", 0.12), ("polyethylene", 0.04), ("Fe", 0.19)),
             2.70, "Li-ion cell: LiCoO2 30%, graphite 17%, Cu 13%, Al 5%, electrolyte 12%, separator 4%, can 19%"),
    Material("pcb", (("pyrex", 0.50), ("pmma", 0.35), ("Cu", 0.15)), 1.90,
             "circuit boards and chips: glass fibre 50%, epoxy 35%, copper 15%"),
    Material("lead", (("Pb", 1.0),), 11.35, "lead bullet cores, weights"),
)

MATERIAL_INDEX = MappingProxyType({m.name: i + 1 for i, m in enumerate(MATERIALS)})


def material_id(name: str) -> int:
    """Index of a material in the material map (1-based; 0 = air); KeyError if unknown."""
    return MATERIAL_INDEX[name]


def linear_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """Per-material mass attenuation (cm^2/g) at low and high energy as float32 arrays (index = id - 1)."""
    lo = np.array([m.mu_rho[0] for m in MATERIALS], np.float32)
    hi = np.array([m.mu_rho[1] for m in MATERIALS], np.float32)
    return lo, hi


def densities() -> np.ndarray:
    """Per-material density (g/cm^3) as a float32 array (index = id - 1)."""
    return np.array([m.density for m in MATERIALS], np.float32)


__all__ = ["E_LOW_KEV", "E_HIGH_KEV", "NIST_MU_RHO", "Material", "MATERIALS", "MATERIAL_INDEX", "material_id",
           "linear_coefficients", "densities"]


def markdown_table() -> str:
    """The material library as a Markdown table (docs/datasets.md quotes it)."""
    rows = ["| id | material | density g/cm^3 | mu/rho 40 keV | mu/rho 80 keV | ratio R "
            "| composition (mass fractions) |", "|---|---|---|---|---|---|---|"]
    for i, m in enumerate(MATERIALS):
        lo, hi = m.mu_rho
        comp = ", ".join(f"{s} {w:.3g}" for s, w in m.composition)
        rows.append(f"| {i + 1} | {m.name} | {m.density:g} | {lo:.4f} | {hi:.4f} | {lo / hi:.2f} | {comp} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
