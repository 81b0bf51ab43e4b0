"""Notebook 06's ablations: Table 5 (joint optimisation) and three studies the paper did not
run (coupling, REPA, report cleaning). ``variants`` names every run as flags of the one training
loop, ``runner`` trains and measures them, ``summary`` turns the measurements into tables and
verdicts."""
