"""Data: the built-in X-ray simulator, readers of PIDRay / CelebAMask-HQ / PASCAL-Part, and the COCO format."""
