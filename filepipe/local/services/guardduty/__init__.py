"""GuardDuty Malware Protection for S3: plans, object scans with the local clamd, their events and tags."""
