"""The paper's self-supervised ablations: HFC+KMeans and HFC+SimCLR (same encoder interface as SwAV)."""

from hfc.clusterers.kmeans import KMeansEncoder, fit_kmeans_encoder, kmeans_centroids
from hfc.clusterers.simclr import NTXentLoss

__all__ = ["KMeansEncoder", "NTXentLoss", "fit_kmeans_encoder", "kmeans_centroids"]
