"""Fleet-health scenarios: ground truth the battery, firmware, calibration, environment and gateway roles are scored on.

Each scenario is generated from a seed and records what it injected, so a bench can check the
roles against the truth and be rerun on seeds never used for tuning.
"""
