"""Building blocks of the dual-energy X-ray baggage simulator (the public API is baggan.data.xraysim).

materials  NIST mass attenuation coefficients at the two effective energies, the material library
geometry   shapes in centimetres (polygons, circles, ellipses, strokes), parts and similarity poses
raster     parts -> per-material mass-thickness maps at any resolution (anti-aliased, profiles)
threats    PIDRay's 12 threat categories as parametric parts
clutter    everyday bag contents (clothes, bottles, electronics, cables, keys, coins, ...)
bag        bag shells and the composition of one scene
render     Beer-Lambert transmissions, photon noise, blur, scatter and the pseudo-colour mapping
preview    mask overlays and contact sheets
"""
