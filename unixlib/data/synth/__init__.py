"""SynthCXR: procedural chest radiographs with MIMIC-style raw reports and ground-truth labels.

``synthetic`` (the dataset), ``findings`` / ``anatomy`` / ``render`` (the image),
``phrases`` (with ``sentences`` and ``wording``) / ``reports`` / ``noise`` (the raw report and
its noise-free truth).
"""
