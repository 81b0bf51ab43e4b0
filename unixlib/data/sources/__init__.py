"""Data sources -> one manifest (``prepare``): ``synth``, ``mimic``, ``iuxray``, ``folder``, with
the shared ``common`` helpers and image I/O (``images``, ``dicom``).
"""
