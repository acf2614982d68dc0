"""The scan verdict function: GuardDuty Malware Protection's scan results handed to the waiting run."""
