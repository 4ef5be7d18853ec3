"""StyleGAN2-ADA networks, checkpoints (ours, official NVlabs pickles, rosinality) and the hfc feature protocol."""

from baggan.stylegan2.checkpoint import load_network, load_network_file, save_network
from baggan.stylegan2.config import NetworkConfig, build_discriminator, build_generator
from baggan.stylegan2.features import StyleGANFeatureGenerator, load_feature_generator
from baggan.stylegan2.networks import Discriminator, Generator, MappingNetwork, SynthesisNetwork

__all__ = [
    "NetworkConfig",
    "build_generator",
    "build_discriminator",
    "Generator",
    "Discriminator",
    "MappingNetwork",
    "SynthesisNetwork",
    "save_network",
    "load_network",
    "load_network_file",
    "StyleGANFeatureGenerator",
    "load_feature_generator",
]
