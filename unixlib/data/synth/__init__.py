"""SynthCXR: procedural chest radiographs with MIMIC-style raw reports and ground-truth labels.

``synthetic`` (the dataset); ``findings`` (what a finding is); ``anatomy`` / ``layers`` /
``devices`` / ``render`` (the image); ``phrases`` / ``sentences`` / ``wording`` / ``reports`` /
``noise`` (the raw report and its noise-free truth).
"""
