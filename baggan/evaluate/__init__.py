"""Evaluation harness: the paper's protocols, each writing a report folder (Markdown + JSON + PNG).

    downstream  a segmenter (DeepLabV3 / SDANet) trained on real + synthetic scans, tested on real (Table 3)
    realism     FID / KID, intensity histograms, material classes and a collage across sets of scans
    report      report-folder helpers shared by every protocol
"""
