"""Realism metrics below every layer that scores images: stylegan2's training probe (stylegan2.metrics) and the
evaluation protocols (evaluate.realism, evaluate.threats) both read them from here.

    fid       the standard FID Inception features, FID and KID
    manifold  improved precision and recall (k-NN manifolds of features)
"""
